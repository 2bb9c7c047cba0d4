"""Traces, metrics and access logs. Every attribute and metric name lives in :mod:`.names`."""
