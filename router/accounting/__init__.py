"""What a request costs and may spend: prices, budgets (reserve, settle), the ledger, the response
cache and usage reports."""
