"""The links in a notification: the alert on the caregiver page, a map of where the band was, and a one-tap
acknowledgement. The first and the last need the address people reach the hub at (`HUB_PUBLIC_URL`);
without it they are left out.

The acknowledge link, `<HUB_PUBLIC_URL>/ack/<alert id>?t=<token>`, carries a token made for one alert and
one recipient:

    token   = <payload>.<signature>
    payload = base64url("<alert id>:<caregiver id>:<expiry, unix seconds>[:<cycle>, when not 0]")
    signature = base64url(HMAC-SHA256(key, "sc-ack/1." + payload))

It allows exactly one thing: acknowledging that alert, as that caregiver, before the expiry
(`HUB_ACK_LINK_TTL_S`), while the alert is still open — and only while the caregiver is still in the
registry and among those notified of it (checked by the API route). It signs no one in and reads nothing.
It is single use by construction: an acknowledged alert goes back to open only when a supervisor reopens
it, which starts a new cycle (`Alert.cycle`, the number of reopenings), and a token is good for the cycle
it was made in only. So a token that worked (or any other acknowledgement of that alert) is spent, and
stays spent after a reopening; no table of spent tokens is needed.

Why the standard library's `hmac` and not itsdangerous: the token is one HMAC over a fixed, tiny payload,
the same primitive the webhook signature already uses (`hub.alerts.sinks.webhook`); itsdangerous would
add a dependency for its serializer and timestamp handling, and would still leave the single-use and
recipient checks to us. The key is `HUB_LINK_SECRET`, or, unset, 32 random bytes kept beside the store
(`link.key`, owner-only), so links keep working across restarts without any configuration.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_VERSION = b"sc-ack/1."
KEY_FILE = "link.key"
# Amap's marker page; `coordinate=wgs84` because bands report GPS (WGS-84) positions, and Amap would
# otherwise read them as its own GCJ-02 and put the marker a few hundred metres off.
DEFAULT_MAP_URL = "https://uri.amap.com/marker?position={lon},{lat}&coordinate=wgs84&callnative=0"


class LinkRefusedError(Exception):
    """The token does not acknowledge this alert; the message says why (safe to show its bearer)."""

    def __init__(self, why: str, *, expired: bool = False) -> None:
        super().__init__(why)
        self.expired = expired


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, TOKEN_VERSION + payload.encode("ascii"), hashlib.sha256).digest())


def issue(key: bytes, alert_id: int, caregiver: str, expires_s: int, cycle: int = 0) -> str:
    # Cycle 0 is left out: the links of alerts never reopened read as they always did.
    fields = f"{alert_id}:{caregiver}:{expires_s}" + (f":{cycle}" if cycle else "")
    payload = _b64(fields.encode())
    return f"{payload}.{_signature(key, payload)}"


def read(key: bytes, token: str, alert_id: int, now_s: float, cycle: int | None = None) -> str:
    """The caregiver `token` acknowledges `alert_id` for; `LinkRefusedError` if it was not made by this hub
    for this alert, has expired, or (`cycle` given: the alert's now) was made before it was reopened."""
    payload, _, signature = token.partition(".")
    if not payload.isascii() or not signature.isascii() or \
            not hmac.compare_digest(_signature(key, payload), signature):
        raise LinkRefusedError("this link is not valid")
    try:
        alert, caregiver, expires, *made_in = _unb64(payload).decode("utf-8").split(":")
        token_alert, expires_s, token_cycle = int(alert), int(expires), int(made_in[0]) if made_in else 0
        if len(made_in) > 1:
            raise ValueError("too many fields")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise LinkRefusedError("this link is not valid") from None
    if token_alert != alert_id:
        raise LinkRefusedError("this link is for another alert")
    if now_s > expires_s:
        raise LinkRefusedError("this link has expired: acknowledge on the caregiver page", expired=True)
    if cycle is not None and token_cycle != cycle:
        raise LinkRefusedError("this link was sent before the alert was reopened: acknowledge on the"
                               " caregiver page or with the link of the latest message")
    return caregiver


def link_key(secret: str, store_path: Path) -> bytes:
    """`secret` when set; otherwise the key kept beside the store, made on first use (owner-only)."""
    if secret:
        return secret.encode("utf-8")
    path = store_path.parent / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key


@dataclass(frozen=True, slots=True)
class Links:
    """Makes a notification's links. `public_url` None: no page and no acknowledge link."""

    public_url: str | None
    key: bytes
    ttl_s: int = 3600
    map_url: str = DEFAULT_MAP_URL
    clock: Callable[[], float] = field(default=time.time)  # wall-clock: the expiry is compared with it

    def page(self, alert_id: int) -> str | None:
        base = self._base()
        return None if base is None else f"{base}/#alert={alert_id}"

    def acknowledge(self, alert_id: int, caregiver: str, cycle: int = 0) -> str | None:
        base = self._base()
        if base is None:
            return None
        token = issue(self.key, alert_id, caregiver, int(self.clock()) + self.ttl_s, cycle)
        return f"{base}/ack/{alert_id}?t={token}"

    def dispatch_callback(self, alert_id: int) -> str | None:
        """Where the dispatcher posts its answers about the alert (`POST`, JSON)."""
        base = self._base()
        if base is None:
            return None
        return f"{base}/api/v1/alerts/{alert_id}/dispatch-answer?t={dispatch_token(self.key, alert_id)}"

    def map(self, lat: float, lon: float) -> str:
        return self.map_url.format(lat=f"{lat:.6f}", lon=f"{lon:.6f}")

    def _base(self) -> str | None:
        return self.public_url.rstrip("/") if self.public_url else None


# The dispatcher's callback (`hub.alerts.sinks.dispatch`): one token per alert, signed under a prefix of its
# own so an acknowledge token never passes for one. It allows only posting answers to that alert's
# history, for as long as the alert exists: an ambulance may arrive hours after the call.
DISPATCH_TOKEN_VERSION = b"sc-dispatch/1."


def dispatch_token(key: bytes, alert_id: int) -> str:
    signed = DISPATCH_TOKEN_VERSION + str(alert_id).encode("ascii")
    return _b64(hmac.new(key, signed, hashlib.sha256).digest())


def is_dispatch_token(key: bytes, token: str, alert_id: int) -> bool:
    return token.isascii() and hmac.compare_digest(dispatch_token(key, alert_id), token)
