"""Notifications written for a person: the title and body a caregiver reads in WeCom, DingTalk, Feishu, an
e-mail or an SMS, in the caregiver's language (`language` in the registry; Chinese by default).

The words are in Jinja2 templates, `templates/<language>/phrases.j2` (one set per language: what happened
for each alert kind, durations, labels), laid out by one template per channel (`templates/title.j2`,
`body.text.j2`, `body.markdown.j2`, `body.html.j2`). This module only gathers what the templates show:

- who (the resident's name and the flags that matter to whoever goes: lives alone, health flags) and
  where, as people say it (community, building, unit), never ids;
- what happened, from the alert's evidence, with local times in the community's time zone, the band's
  position with a map link, floors and the clip of a falling object, the silence and the usual rhythm;
- whom to call: a family member gets the grid worker's and duty officer's phones; staff get the
  resident's and the family's (only what the recipient needs: nobody gets the whole address book);
- the links: the alert on the caregiver page and a one-tap acknowledgement for this recipient
  (`hub.alerts.links`), when `HUB_PUBLIC_URL` is set.

Escaping: HTML is escaped by Jinja2's autoescape; for markdown every registry text (names, units, flags)
is escaped before it reaches the template, so a name cannot turn into a link or a heading; plain text
goes as it is. The output is pinned by the golden files in `hub/alerts/testdata/messages/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import jinja2

from hub.alerts.links import Links
from hub.alerts.notification import Notification
from hub.registry import Caregiver

Channel = Literal["text", "markdown", "html"]
Clean = Callable[[str], str]  # makes a registry text safe for the channel
CHANNELS: tuple[Channel, ...] = get_args(Channel)
Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

# How apprise delivers each scheme. WeCom's group bot takes plain text only in apprise; DingTalk and
# Feishu/Lark render markdown; e-mail gets HTML. Anything else (SMS gateways...) gets plain text.
_CHANNEL_BY_SCHEME: dict[str, Channel] = {
    "mailto": "html", "mailtos": "html",
    "dingtalk": "markdown", "feishu": "markdown", "lark": "markdown",
}
_STAFF_ROLES = ("grid_worker", "duty_officer", "property_security")
# What turns text into emphasis, code, a link, HTML, a heading or a table in the markdown chat apps render;
# hyphens and dots (list markers only at a line's start, which a registry text never is) stay readable.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()#|<>~])")


def channel_of(url: str) -> Channel:
    return _CHANNEL_BY_SCHEME.get(url.partition("://")[0].lower(), "text")


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    channel: Channel


@cache
def _environment(channel: Channel) -> jinja2.Environment:
    # One environment per channel, so that autoescape (HTML only) applies to the phrases the layouts
    # import as well: Jinja2 compiles a template with its environment's escaping.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("hub.alerts", "templates"),
        autoescape=channel == "html",
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the golden tests, not a caregiver
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def _markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def render(notification: Notification, channel: Channel, links: Links) -> Message:
    """The message for `notification.recipient` (None: a shared address, such as a duty room's group
    chat, told as staff and without an acknowledge link, which is made for one person)."""
    recipient = notification.recipient
    language: Language = recipient.language if recipient is not None else "zh"
    clean = _markdown_escape if channel == "markdown" else str
    # The title is a chat title or an e-mail subject: plain text whatever the body's channel.
    title = _environment("text").get_template("title.j2").render(
        lang=language, **_view(notification, links, str, with_links=False))
    body = _environment(channel).get_template(f"body.{channel}.j2").render(
        lang=language, **_view(notification, links, clean))
    return Message(title=" ".join(title.split()), body=body.strip() + "\n", channel=channel)


def words(language: Language) -> dict[str, dict[str, str]]:
    """The labels of `language`'s phrases (kinds, severities, reasons, outcomes, roles): the caregiver
    page shows the same words (its browser test compares them)."""
    # The phrases' top level needs no context (their macros, which do, are not called here).
    module = _environment("text").get_template(f"{language}/phrases.j2").make_module({})
    return {name.lower(): dict(getattr(module, name))
            for name in ("KINDS", "SEVERITIES", "REASONS", "OUTCOMES", "ROLES")}



def _view(notification: Notification, links: Links, clean: Clean, *,
          with_links: bool = True) -> dict[str, Any]:
    a = notification.alert
    labels = notification.labels
    zone = ZoneInfo(notification.timezone)
    residents = labels.residents if labels is not None else ()
    caregivers = {c.id: c for c in labels.caregivers} if labels is not None else {}
    recipient = notification.recipient
    role = recipient.role if recipient is not None else "duty_officer"

    def at(ms: object) -> str:
        # The time of day, with the date when it was not the day the alert was last seen (a long
        # silence, a message that arrived late).
        same_day = _local(ms, zone, "%Y-%m-%d") == _local(a.last_seen_ms, zone, "%Y-%m-%d")
        return _local(ms, zone, "%H:%M" if same_day else "%m-%d %H:%M")

    def day(ms: object) -> str:
        return _local(ms, zone, "%Y-%m-%d")

    def name_of(actor: str | None) -> str | None:
        if actor is None:
            return None
        return clean(caregivers[actor].name if actor in caregivers else actor)

    who = [clean(r.name) for r in residents] or ([clean(notification.resident_name)]
                                                 if notification.resident_name else [])
    flags = list(dict.fromkeys(flag for r in residents
                               for flag in (["lives_alone"] if r.lives_alone else []) + list(r.flags)))
    evidence = a.evidence
    location = evidence.get("location")
    where = None
    if isinstance(location, dict) and _number(location.get("lat")) and _number(location.get("lon")):
        lat, lon = float(location["lat"]), float(location["lon"])
        accuracy: Any = location.get("accuracy_m")
        where = {"lat": f"{lat:.5f}", "lon": f"{lon:.5f}", "map": links.map(lat, lon),
                 "accuracy_m": round(float(accuracy)) if _number(accuracy) else None}
    clip = evidence.get("clip", evidence.get("snapshot"))  # a falling object's video, a peephole's picture
    return {
        "alert": a, "reason": notification.reason, "tier": notification.tier, "role": role,
        "ev": evidence, "at": at, "day": day,
        "who": who, "flags": [flag if flag == "lives_alone" else clean(flag) for flag in flags],
        "community": clean(labels.community_name or a.community) if labels else clean(a.community),
        "building": clean(labels.building_name or a.building) if labels else clean(a.building),
        "unit": clean(notification.unit) if notification.unit else None,
        "device": clean(a.device) if a.device else None,
        "where": where,
        # Only a web address is a link (never `javascript:`); percent-encoded where markdown would end it.
        "media": "snapshot" if "snapshot" in evidence else "clip",
        "clip_url": (clip.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
                     if isinstance(clip, str) and clip.startswith(("https://", "http://")) else None),
        "contacts": _contacts(role, residents, caregivers.values(), recipient, clean),
        "acknowledged_by": name_of(a.acknowledged_by), "resolved_by": name_of(a.resolved_by),
        "assigned_to": name_of(a.assigned_to),
        "alert_note": clean(a.note),  # a reopened alert's: why it is open again
        # A report filed by hand: who filed it, in their own words.
        "reporter": clean(str(evidence.get("reporter_name") or evidence.get("reported_by"))),
        "report_note": clean(str(evidence.get("note", ""))),
        "page_link": links.page(a.id) if with_links else None,
        # Made for one person: none for a shared address, and none once there is nothing to acknowledge.
        "ack_link": (links.acknowledge(a.id, recipient.id, a.cycle)
                     if with_links and recipient is not None and a.state == "open" else None),
        "ack_valid_s": links.ttl_s,
    }


def _contacts(role: str, residents: Any, caregivers: Any, recipient: Caregiver | None,
              clean: Clean) -> list[dict[str, str]]:
    """Whom this recipient may call, with phones: family call the staff; staff call the resident and the
    family (a staff member's own colleagues are in their own directory)."""
    people: list[dict[str, str]] = []
    if role in _STAFF_ROLES:
        people += [{"role": "resident", "name": clean(r.name), "phone": clean(r.phone)}
                   for r in residents if r.phone]
        wanted: tuple[str, ...] = ("family",)
    else:
        wanted = ("grid_worker", "duty_officer")
    people += [{"role": c.role, "name": clean(c.name), "phone": clean(c.phone)}
               for c in caregivers if c.role in wanted and c.phone
               and (recipient is None or c.id != recipient.id)]
    return people


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _local(ms: object, zone: ZoneInfo, pattern: str) -> str:
    if not _number(ms):
        return "?"
    return datetime.fromtimestamp(float(ms) / 1000, UTC).astimezone(zone).strftime(pattern)  # type: ignore[arg-type]
