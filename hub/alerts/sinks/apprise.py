"""Apprise sink: a message written for a person (`hub.alerts.messages`: in the caregiver's language, as
plain text, markdown or HTML by the channel) to each notified caregiver's `notify` URLs from the
registry — WeCom (`wecombot://`), DingTalk (`dingtalk://`), Feishu
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
from itertools import groupby

import apprise

from hub.alerts.links import Links
from hub.alerts.messages import Channel, channel_of, render
from hub.alerts.notification import Notification
from hub.alerts.sinks.sink import DeliveryError
from hub.redact import quiet_third_party_loggers, redact_urls_in
from hub.registry import Caregiver

_FORMATS: dict[Channel, apprise.NotifyFormat] = {
    "text": apprise.NotifyFormat.TEXT, "markdown": apprise.NotifyFormat.MARKDOWN,
    "html": apprise.NotifyFormat.HTML,
}


class AppriseSink:
    name = "apprise"

    def __init__(self, global_urls: Sequence[str] = (), links: Links | None = None) -> None:
        self._global_urls = list(global_urls)
        self._links = links or Links(public_url=None, key=b"")
        quiet_third_party_loggers()  # apprise logs the URLs it is given, keys and all

    def addressees(self, recipients: Sequence[Caregiver]) -> list[str | None]:
        people: list[str | None] = [c.id for c in recipients if c.notify]
        return [*people, None] if self._global_urls else people

    def send(self, notification: Notification) -> None:
        urls = notification.recipient.notify if notification.recipient is not None else self._global_urls
        if not urls:
            return  # the caregiver's notify URLs were removed from the registry since this was queued
        unparsable: list[str] = []
        failures: list[str] = []
        # One rendering per channel (an e-mail gets HTML, DingTalk markdown...), each sent to its URLs.
        for channel, group in groupby(sorted(urls, key=channel_of), key=channel_of):
            client = apprise.Apprise()
            unparsable += [url for url in group if not client.add(url)]
            if len(client) > 0:
                failure = self._notify(client, notification, channel)
                if failure is not None:
                    failures.append(failure)
        if failures:
            raise DeliveryError("apprise: " + "; ".join(failures))
        if unparsable:
            # Name the scheme only: the rest of an apprise URL is usually a token or a password.
            schemes = ", ".join(sorted({url.split(":", 1)[0] for url in unparsable}))
            raise DeliveryError(f"apprise cannot parse {len(unparsable)} URL(s) ({schemes}); any others were"
                                " sent", retryable=False)

    def _notify(self, client: apprise.Apprise, notification: Notification, channel: Channel) -> str | None:
        """Send; None when sent, else why not (cut to what is safe to show: it is stored with the delivery
        and shown by the API)."""
        message = render(notification, channel, self._links)
        with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            sent = client.notify(title=message.title, body=message.body, body_format=_FORMATS[channel])
        return None if sent else (redact_urls_in(captured.getvalue().strip())[-500:] or "sending failed")

    def close(self) -> None:
        pass
