"""An upstream emulator: the OpenAI chat API as vLLM serves it, with vLLM's Prometheus metrics.

It plays vLLM replicas and frontier APIs in tests and in the quick start, since this machine has
neither a GPU nor the internet.
"""
