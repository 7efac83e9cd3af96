"""`/ack/{alert_id}?t=<token>`: the one-tap acknowledgement a notification links to (the token's design is
in `hub.alerts.links`). It needs no sign-in: the token is the permission, and it allows this one thing.

GET shows a page with one button and changes nothing: chat apps open links to preview them, and a
preview must not acknowledge an alert nobody has read. The button POSTs the token back (a form, no
script), and that acknowledges the alert as the caregiver the link was made for, recorded in its history
with `via: link`; the other tiers already told hear of it as of any acknowledgement.

Refused, each with a page that says why: a token not made by this hub, or made for another alert
(403); expired (410); a caregiver no longer in the registry or not among those notified (403); an alert
already acknowledged or resolved (409: the link has been used, or someone else took it on), or reopened
since the link was sent (409: the link of the reopening's message works).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

from hub.alerts.directory import caregiver, recipient_tiers
from hub.alerts.links import LinkRefusedError, read
from hub.alerts.messages import Language, words
from hub.alerts.model import Alert, AlertError
from hub.api.deps import AlertsDep, LinksDep, RegistryDep
from hub.api.routes.web import SECURITY_HEADERS
from hub.clock import SystemClock
from hub.registry import Registry

router = APIRouter(tags=["web"], include_in_schema=False)

_pages = Environment(loader=PackageLoader("hub.api", "web"), autoescape=True)
_MAX_TOKEN = 512  # far longer than any token this hub makes

AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class _RefusedError(Exception):
    def __init__(self, status_code: int, why: str) -> None:
        super().__init__(why)
        self.status_code = status_code


def _page(status_code: int, *, language: Language, alert_id: int, kind: str | None = None,
          token: str | None = None, done_by: str | None = None, refused: str | None = None) -> HTMLResponse:
    body = _pages.get_template("ack.html.j2").render(
        lang=language, alert_id=alert_id, kind=words(language)["kinds"].get(kind or "", kind), token=token,
        done_by=done_by, refused=refused)
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def _checked(registry: Registry, alerts: AlertsDep, links: LinksDep, alert_id: int,
             token: str) -> tuple[str, Alert]:
    """The caregiver the token acknowledges `alert_id` for, and the alert; `_RefusedError` otherwise."""
    try:
        holder = read(links.key, token[:_MAX_TOKEN], alert_id, SystemClock().now_ms() / 1000)
    except LinkRefusedError as exc:
        code = status.HTTP_410_GONE if exc.expired else status.HTTP_403_FORBIDDEN
        raise _RefusedError(code, str(exc)) from None
    try:
        alert = alerts.get(alert_id).alert
    except AlertError:
        raise _RefusedError(status.HTTP_404_NOT_FOUND, "there is no such alert") from None
    try:  # made for this alert, but before a supervisor reopened it: spent like a used one
        read(links.key, token[:_MAX_TOKEN], alert_id, SystemClock().now_ms() / 1000, cycle=alert.cycle)
    except LinkRefusedError as exc:
        raise _RefusedError(status.HTTP_409_CONFLICT, str(exc)) from None
    tiers = recipient_tiers(registry, kind=alert.kind, community=alert.community, household=alert.household,
                            resident=alert.resident)
    told = {c.id for tier, people in tiers.items() if tier <= alert.tier for c in people}
    if caregiver(registry, holder) is None or holder not in told:
        raise _RefusedError(status.HTTP_403_FORBIDDEN, "this link is not for anyone notified of this alert")
    return holder, alert


def _language(registry: Registry, token: str, alert_id: int, links: LinksDep) -> Language:
    """The link holder's language when the token names a caregiver, else Chinese (for refusals)."""
    try:
        holder = read(links.key, token[:_MAX_TOKEN], alert_id, 0)  # expiry aside: only to choose words
    except LinkRefusedError:
        return "zh"
    found = caregiver(registry, holder)
    return found.language if found is not None else "zh"


@router.get("/ack/{alert_id}", response_class=HTMLResponse)
def confirm_page(registry: RegistryDep, alerts: AlertsDep, links: LinksDep, alert_id: AlertId,
                 t: Annotated[str, Query(max_length=_MAX_TOKEN)] = "") -> HTMLResponse:
    language = _language(registry, t, alert_id, links)
    try:
        _, alert = _checked(registry, alerts, links, alert_id, t)
    except _RefusedError as exc:
        return _page(exc.status_code, language=language, alert_id=alert_id, refused=str(exc))
    if alert.state != "open":
        return _page(status.HTTP_409_CONFLICT, language=language, alert_id=alert_id, kind=alert.kind,
                     refused=f"already {alert.state} by {alert.acknowledged_by or alert.resolved_by}")
    return _page(status.HTTP_200_OK, language=language, alert_id=alert_id, kind=alert.kind, token=t)


@router.post("/ack/{alert_id}", response_class=HTMLResponse)
async def acknowledge_by_link(request: Request, registry: RegistryDep, alerts: AlertsDep, links: LinksDep,
                              alert_id: AlertId) -> HTMLResponse:
    # The form's one field, read by hand: FastAPI's Form() would need python-multipart for this alone.
    form = parse_qs((await request.body())[:4 * _MAX_TOKEN].decode("utf-8", "replace"))
    token = (form.get("t") or [""])[0]
    language = _language(registry, token, alert_id, links)
    try:
        holder, alert = _checked(registry, alerts, links, alert_id, token)
        try:
            alerts.acknowledge(alert_id, by=holder, via="link")
        except AlertError as exc:  # used already, or someone else acknowledged or resolved it meanwhile
            raise _RefusedError(status.HTTP_409_CONFLICT, str(exc)) from None
    except _RefusedError as exc:
        return _page(exc.status_code, language=language, alert_id=alert_id, refused=str(exc))
    found = caregiver(registry, holder)
    return _page(status.HTTP_200_OK, language=language, alert_id=alert_id, kind=alert.kind,
                 done_by=found.name if found else holder)
