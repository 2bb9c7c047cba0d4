"""Tenants and API keys (pure): which tenant a request belongs to, and whether it may use the admin API."""
