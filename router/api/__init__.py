"""The wire format of the one endpoint: the chat request (parse, bound, allowlist), and SSE framing."""
