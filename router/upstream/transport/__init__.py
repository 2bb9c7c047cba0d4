"""How one attempt reaches an upstream: vLLM over aiohttp, frontier APIs through litellm, an in-process mock."""
