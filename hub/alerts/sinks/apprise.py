"""Apprise sink: a readable message (see `hub.alerts.notification.title`/`text`) to each notified
caregiver's `notify` URLs from the registry — WeCom (`wecombot://`), DingTalk (`dingtalk://`), Feishu
(`feishu://`), e-mail (`mailto://`), SMS gateways, anything apprise speaks — plus global URLs that get
every notification (a duty room's group chat). Sample configuration:

    HUB_ALERTS_APPRISE_ENABLED=true
    HUB_ALERTS_APPRISE_URLS='["dingtalk://<token>/", "mailtos://user:pass@smtp.example.com?to=duty@example.com"]'

and, per caregiver in the registry:

    caregivers:
      - {id: cg-li, community: sunshine, name: 李女士, role: family, notify: ["wecombot://<key>", "mailto://..."]}

Each caregiver is one delivery, retried on its own, so one unreachable chat service does not resend
everyone else's message. Apprise reports only success or failure per call, so every failure is retried
except URLs apprise cannot parse, which no retry will fix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import apprise

from hub.alerts.notification import Notification, text, title
from hub.alerts.sinks.sink import DeliveryError
from hub.redact import quiet_third_party_loggers, redact_urls_in
from hub.registry import Caregiver


class AppriseSink:
    name = "apprise"

    def __init__(self, global_urls: Sequence[str] = ()) -> None:
        self._global_urls = list(global_urls)
        quiet_third_party_loggers()  # apprise logs the URLs it is given, keys and all

    def addressees(self, recipients: Sequence[Caregiver]) -> list[str | None]:
        people: list[str | None] = [c.id for c in recipients if c.notify]
        return [*people, None] if self._global_urls else people

    def send(self, notification: Notification) -> None:
        urls = notification.recipient.notify if notification.recipient is not None else self._global_urls
        if not urls:
            return  # the caregiver's notify URLs were removed from the registry since this was queued
        client = apprise.Apprise()
        unparsable = [url for url in urls if not client.add(url)]
        if len(client) > 0:
            with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
                result = client.notify(title=title(notification), body=text(notification))
            if not result:
                # Stored with the delivery and shown by the API: its URLs cut to what is safe to show.
                why = redact_urls_in(captured.getvalue().strip())[-500:]
                raise DeliveryError("apprise: " + (why or "sending failed"))
        if unparsable:
            # Name the scheme only: the rest of an apprise URL is usually a token or a password.
            schemes = ", ".join(sorted({url.split(":", 1)[0] for url in unparsable}))
            raise DeliveryError(f"apprise cannot parse {len(unparsable)} URL(s) ({schemes}); any others were"
                                " sent", retryable=False)

    def close(self) -> None:
        pass
