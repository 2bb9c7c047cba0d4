"""Upstreams: the clusters a policy names, live. The pure bookkeeping (no I/O, no clock, no randomness of
its own: the clock and the random source are parameters, so every decision is deterministic in tests) is
``balance``, ``outlier``, ``estimate``, ``limits``, ``ordering`` and ``request``; the live state is
``cluster`` (one cluster and the lease a request holds on it), ``kinds`` (pool and API), ``endpoints``,
``upstreams`` (built from a policy, carried over on reload) and ``health``; ``transport`` reaches them."""
