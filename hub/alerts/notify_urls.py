"""Which caregiver `notify` URLs (apprise) the registry may hold, and how the API shows them.

A notify URL decides where a resident's alerts go, and an apprise URL may carry a bot key or a password:
whoever can set one can redirect alerts, or point the hub at a machine on its own network. So a URL set
through the API must use a scheme on the allow-list (`HUB_NOTIFY_ALLOW`: `scheme`, any host; or
`scheme://host`, that host or its subdomains only) and, unless `HUB_NOTIFY_ALLOW_PRIVATE`, must not name
a loopback, private, link-local or otherwise non-public address. Host names are not resolved here (no
I/O in a check); an allow-list of `scheme://host` entries is the way to pin web hooks to known hosts.

The API never returns a notify URL whole, only its scheme (`wecombot://`): the rest is a key. The alert
webhook's own URL (`HUB_ALERTS_WEBHOOK_URL`) must be https:// unless plain http:// is allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

# Apprise schemes of the messengers and mail a community uses; web hooks (`jsons://host/...`) need a host.
DEFAULT_ALLOW = ("mailto", "mailtos", "wecombot", "dingtalk", "feishu", "lark")


def redact(url: str) -> str:
    """What the API shows of a notify URL: its scheme only."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://" if sep else "…"


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, in any form a resolver takes (`127.1`, `2130706433`, `[::1]`)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:  # inet_aton takes the shorthand and numeric forms getaddrinfo would turn into an address
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class NotifyUrlPolicy:
    allow: tuple[str, ...] = DEFAULT_ALLOW
    allow_private: bool = False

    def problem(self, url: str) -> str | None:
        """Why `url` may not be a notify URL; None when it may."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError as exc:
            return f"{redact(url)} is not a URL: {exc}"
        scheme = parts.scheme.lower()
        if not scheme or "://" not in url or not url.partition("://")[2].strip():
            return f"{redact(url)} names no target: a notify URL is `scheme://…` (apprise)"
        schemes = {entry.partition("://")[0].lower() for entry in self.allow}
        if scheme not in schemes:
            return (f"scheme {scheme!r} is not allowed for notify URLs (HUB_NOTIFY_ALLOW: "
                    f"{', '.join(self.allow)})")
        hosts = [entry.partition("://")[2].lower() for entry in self.allow
                 if entry.partition("://")[0].lower() == scheme]
        if "" not in hosts and not any(host == h or host.endswith("." + h) for h in hosts):
            # The host is not echoed: in many apprise URLs it is a bot key.
            return f"{scheme}:// may only name {', '.join(hosts)} (HUB_NOTIFY_ALLOW)"
        if self.allow_private:
            return None
        if host == "localhost" or host.endswith(".localhost"):
            return f"{scheme}:// names {host}, a loopback address (HUB_NOTIFY_ALLOW_PRIVATE allows it)"
        address = _address(host) if host else None
        if address is not None and not address.is_global:
            return (f"{scheme}:// names {address}, not a public address "
                    "(HUB_NOTIFY_ALLOW_PRIVATE allows loopback and private addresses)")
        return None


def check_webhook_url(url: str, *, allow_http: bool,
                      allowed_by: str = "HUB_ALERTS_WEBHOOK_ALLOW_HTTP") -> None:
    """Refuse a webhook URL that is not https:// (or http:// when allowed, by the setting `allowed_by`),
    with the reason."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and allow_http):
        return
    if scheme == "http":
        raise ValueError("the webhook URL is plain http://: alerts name residents and would cross the "
                         f"network unencrypted; use https://, or set {allowed_by}=true for a "
                         "receiver on this machine or a test bench")
    raise ValueError(f"the webhook URL must start with https:// (not {scheme or 'no scheme'}://)")
