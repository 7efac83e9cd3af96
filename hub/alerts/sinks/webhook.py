"""Webhook sink: each notification POSTed as JSON (see `hub.alerts.notification.body`), signed so the
receiver can check it came from this hub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body,
keyed with the shared secret>` (GitHub's scheme; compare in constant time). Sample configuration:

    HUB_ALERTS_WEBHOOK_URL=https://pms.example.com/hooks/sc-alerts
    HUB_ALERTS_WEBHOOK_SECRET=<shared secret>
    HUB_ALERTS_WEBHOOK_TIMEOUT_S=5

Any 2xx is delivered. Connection errors, timeouts, 5xx, 408 and 429 are retried with back-off by the
delivery queue; any other answer (a 4xx: the receiver refuses this body) gives the delivery up.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request
from collections.abc import Sequence

from hub.alerts.notification import Notification, body_bytes
from hub.alerts.sinks.sink import DeliveryError
from hub.registry import Caregiver

SIGNATURE_HEADER = "X-Hub-Signature-256"
_RETRYABLE_STATUSES = {408, 429}


def signature(secret: str, payload: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def request_headers(secret: str, payload: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", "User-Agent": "sc-hub-alerts",
            SIGNATURE_HEADER: signature(secret, payload)}


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, secret: str, timeout_s: float) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL {url!r} must start with http:// or https://")
        self._url = url
        self._secret = secret
        self._timeout_s = timeout_s

    def addressees(self, recipients: Sequence[Caregiver]) -> list[str | None]:
        return [None]

    def send(self, notification: Notification) -> None:
        payload = body_bytes(notification)
        request = urllib.request.Request(self._url, data=payload, method="POST",
                                         headers=request_headers(self._secret, payload))
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
