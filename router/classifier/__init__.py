"""Task classification and complexity scoring: what kind of task a request is, and how likely a small
self-hosted model is to fall short on it. See docs/classification.md for the data, the model and scores."""
