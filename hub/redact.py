"""Secrets kept out of what the hub logs, prints and stores as text: passwords in URLs, and the keys
apprise URLs carry (`wecombot://<key>`, `…?access_token=…`).

`redact_url` masks the password of one configured URL (the broker's, InfluxDB's) and keeps the rest, so
an operator still reads which host and user the hub uses. `redact_urls_in` rewrites every URL in free text
(a third-party library's log line, an error message) to what is safe to show: `scheme://host…` for web
URLs, the scheme alone for the rest, whose host part is often the key itself.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{1,15})://([^\s'\"<>]*)")
_WEB = ("http", "https")


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`: `mqtt://hub:***@broker:1883`."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not even a URL: show its scheme only
        return url.partition("://")[0] + "://…" if "://" in url else MASK
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon or not password:
        return url
    return urlunsplit((parts.scheme, f"{user}:{MASK}@{hostport}", parts.path, parts.query, parts.fragment))


def redact_urls_in(text: str) -> str:
    """Every URL in `text` cut to `scheme://host…` (web URLs) or `scheme://…` (anything else)."""

    def cut(match: re.Match[str]) -> str:
        scheme, rest = match.group(1), match.group(2)
        if scheme.lower() in _WEB:
            host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
            return f"{scheme}://{host}…" if host else f"{scheme}://…"
        return f"{scheme}://…"

    return _URL.sub(cut, text)


class RedactingFilter(logging.Filter):
    """A logger filter that rewrites each record's message with `redact_urls_in` (and drops its args)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_urls_in(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# Libraries that log keys: apprise its notify URLs (`wecombot://<key>`, `…/send?key=<key>`) at DEBUG and
# INFO and URLs in some warnings and errors; urllib3 (under apprise and the InfluxDB client) each request
# line, query string (`?access_token=`) included, at DEBUG.
_TALKATIVE = ("apprise", "urllib3")


def quiet_third_party_loggers() -> None:
    """Keep the libraries that log keys at WARNING whatever the hub's level, and cut every URL in what they
    still log. Idempotent."""
    for name in _TALKATIVE:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
