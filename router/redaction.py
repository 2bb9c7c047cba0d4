"""What may be shown of a URL: scheme, host, port and path; never its userinfo or query (pure)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """``url`` without ``user:password@`` and without ``?query`` / ``#fragment`` (they may carry keys).

    Anything that does not parse as a URL with a host is shown as ``(redacted)``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "(redacted)"
    if not parts.scheme or not host:
        return url if "@" not in url and "?" not in url else "(redacted)"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
