"""Upstream transports: one interface, a direct vLLM/OpenAI-compatible one and a litellm one."""
