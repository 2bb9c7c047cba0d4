"""HTTP entry points: the app factory, handlers and the error/telemetry middleware."""
