"""hybrid-llm-router: one OpenAI-compatible endpoint in front of self-hosted and frontier LLMs.

Public API (kept small on purpose):

- :func:`router.http.app.create_app` builds the aiohttp application from :class:`router.settings.Settings`.
- :func:`router.policy.compile.load_policy` loads and validates policy files.
- :mod:`router.errors` is the one exception tree.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
