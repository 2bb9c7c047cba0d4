"""The router's decision without a server: ``router classify``, ``router explain``, golden policy tests."""
