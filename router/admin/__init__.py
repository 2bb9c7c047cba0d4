"""What operators see and do on a running proxy: the clusters' live state and policy reload."""
