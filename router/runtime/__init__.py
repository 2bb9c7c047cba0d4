"""Runtime adapters: live clusters and transports, health checks, emulated upstreams, policy reload."""
