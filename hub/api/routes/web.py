"""The caregiver web page: `/` and its assets under `/static/`, plain files from hub/api/web/ served as they
are (no build step, no CDN: many deployments have no internet). The page talks to /api/v1 with the
caller's token; these routes need none, as the files hold nothing but code and labels."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# Module scripts are refused by browsers unless served as JavaScript, so the type is set, not guessed.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

SECURITY_HEADERS = {
    # Only this hub's own scripts, styles and API: an injected alert text can never run as code.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time, so a phone picks up an upgraded hub's page instead of a cached old one.
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["web"], include_in_schema=False)


def _asset(name: str) -> FileResponse:
    path = WEB_DIR / name
    media_type = MEDIA_TYPES.get(path.suffix)
    # Names come from the URL: only plain file names of the served kinds, never a path out of WEB_DIR.
    if media_type is None or "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {name!r}")
    return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)


@router.api_route("/", methods=["GET", "HEAD"])
def index() -> FileResponse:
    return _asset("index.html")


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
def static_asset(name: str) -> FileResponse:
    return _asset(name)
