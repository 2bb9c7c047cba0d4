"""Budgets (pure): which apply to a request, the counters they keep per UTC window, and the verdict."""
