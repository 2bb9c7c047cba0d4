"""Pure upstream bookkeeping (no I/O, no clock, no randomness of its own): outlier ejection, endpoint
choice, latency estimates and concurrency limits. The clock and the random source are parameters, so
every decision here is deterministic in tests; :mod:`router.runtime.clusters` holds the live state."""
