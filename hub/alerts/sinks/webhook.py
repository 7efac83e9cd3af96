"""Webhook sink: each notification POSTed as JSON (see `hub.alerts.notification.body`), signed so the
receiver can check it came from this hub, and came now (Stripe's convention):

    Sc-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>", keyed with the shared secret>

The receiver recomputes v1 over the timestamp and the body it received, compares in constant time, and
refuses a timestamp further from its own clock than a tolerance (`verify`: 5 minutes), so a captured
request cannot be replayed later. Each attempt (a retry too) is signed afresh. Sample configuration:

    HUB_ALERTS_WEBHOOK_URL=https://pms.example.com/hooks/sc-alerts
    HUB_ALERTS_WEBHOOK_SECRET=<shared secret>
    HUB_ALERTS_WEBHOOK_TIMEOUT_S=5

Plain `http://` is refused (the body names residents) unless `HUB_ALERTS_WEBHOOK_ALLOW_HTTP=true` (a
receiver on the same machine, a test bench). Any 2xx is delivered. Connection errors, timeouts, 5xx, 408
and 429 are retried with back-off by the delivery queue; any other answer (a 4xx: the receiver refuses
this body) gives the delivery up.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from hub.alerts.notification import Notification, body_bytes
from hub.alerts.notify_urls import check_webhook_url
from hub.alerts.sinks.sink import DeliveryError
from hub.registry import Caregiver

SIGNATURE_HEADER = "Sc-Signature"
TOLERANCE_S = 300  # how far a receiver lets the signed time differ from its own clock (`verify`)
_RETRYABLE_STATUSES = {408, 429}


def _v1(secret: str, timestamp: int, payload: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature(secret: str, payload: bytes, timestamp: int) -> str:
    """The signature header's value: `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<payload>">`."""
    return f"t={timestamp},v1={_v1(secret, timestamp, payload)}"


def verify(secret: str, header: str, payload: bytes, *, now: float | None = None,
           tolerance_s: int = TOLERANCE_S) -> bool:
    """What a receiver does (a reference for integrators, and the tests): the header is well formed, its
    time within `tolerance_s` of `now`, and one of its v1 signatures that of this payload at that time."""
    parts = [part.partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key.strip() == "t"]
    signatures = [value.strip() for key, _, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = _v1(secret, timestamp, payload)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def request_headers(secret: str, payload: bytes, timestamp: int) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", "User-Agent": "sc-hub-alerts",
            SIGNATURE_HEADER: signature(secret, payload, timestamp)}


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, secret: str, timeout_s: float, *, allow_http: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        check_webhook_url(url, allow_http=allow_http)
        self._url = url
        self._secret = secret
        self._timeout_s = timeout_s
        self._clock = clock  # wall-clock seconds: the receiver compares the signed time with its own

    def addressees(self, recipients: Sequence[Caregiver]) -> list[str | None]:
        return [None]

    def payload(self, notification: Notification) -> bytes:
        """The bytes POSTed (and signed) for `notification`."""
        return body_bytes(notification)

    def send(self, notification: Notification) -> None:
        payload = self.payload(notification)
        request = urllib.request.Request(self._url, data=payload, method="POST",
                                         headers=request_headers(self._secret, payload,
                                                                 int(self._clock())))
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            retryable = exc.code >= 500 or exc.code in _RETRYABLE_STATUSES
            raise DeliveryError(f"HTTP {exc.code} {exc.reason}", retryable=retryable) from exc
        except (OSError, ValueError) as exc:  # refused, reset, timeout, DNS; malformed answers
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        pass
