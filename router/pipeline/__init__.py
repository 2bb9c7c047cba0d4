"""The life of a request: the sequence of stages, failover across targets, one attempt, the relay of a stream."""
