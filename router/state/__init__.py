"""Shared state (budget counters, the cost ledger, the response cache): one protocol, an in-memory store
for a single process, a Redis store for many, and a wrapper that keeps serving while Redis is away."""
