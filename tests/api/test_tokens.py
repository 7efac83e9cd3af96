"""Tokens end, and hold a bounded number of streams (issue 12, item 5): revoking a token ends its live
alert streams within a second or two (not after the next 15 s keepalive), a token holds at most
HUB_HTTP_STREAMS_PER_TOKEN streams, and a token may expire (`hub tokens create --expires 90d`), shown in
`hub tokens list` and refused from then on. Against a real hub subprocess over real HTTP."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from hub.api.tokens import Role, TokenStore, parse_duration_ms
from tests.api.support import client, make_token, write_registry
from tests.conftest import StartHub
from tests.real_servers import HubProcess, wait_until

DAY_MS = 86_400_000


class Stream(threading.Thread):
    """One client of /api/v1/alerts/stream on its own thread: its status, whether it is open, and whether
    the server ended it."""

    def __init__(self, hub: HubProcess, token: str) -> None:
        super().__init__(daemon=True)
        self._url = f"{hub.http_url}/api/v1/alerts/stream"
        self._token = token
        self.status: int | None = None
        self.detail = ""
        self.connected = threading.Event()
        self.ended = threading.Event()
        self._closing = threading.Event()
        self._response: httpx.Response | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            timeout = httpx.Timeout(10, read=60)
            with httpx.stream("GET", self._url, headers=headers, timeout=timeout) as response:
                self._response, self.status = response, response.status_code
                if response.status_code != 200:
                    self.detail = json.loads(response.read())["detail"]
                    return
                for line in response.iter_lines():
                    if line == ": connected":
                        self.connected.set()
        except httpx.HTTPError:
            if not self._closing.is_set():
                raise
        finally:
            self.ended.set()

    def open(self) -> Stream:
        self.start()
        wait_until(lambda: self.connected.is_set() or self.ended.is_set(), 10, what="the stream's answer")
        return self

    def close(self) -> None:
        self._closing.set()
        if self._response is not None:
            self._response.close()


@pytest.fixture
def hub(start_hub: StartHub, tmp_path: Path) -> HubProcess:
    return start_hub(write_registry(tmp_path / "registry.yaml"), {"HUB_HTTP_STREAMS_PER_TOKEN": "2"})


def tokens_cli(hub: HubProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", "tokens", *args],
                          env={**hub.env, "HUB_REGISTRY_PATH": str(hub.registry), "COLUMNS": "250"},
                          capture_output=True, text=True, timeout=60, check=False)


def test_revoking_a_token_ends_its_live_streams_at_once(hub: HubProcess) -> None:
    created = tokens_cli(hub, "create", "--name", "li-tablet", "--role", "caregiver", "--caregiver", "cg-li")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    other = make_token(hub, "zhou", Role.CAREGIVER, caregiver="cg-zhou")
    streams = [Stream(hub, token).open(), Stream(hub, token).open()]
    bystander = Stream(hub, other).open()
    assert all(s.connected.is_set() for s in [*streams, bystander])

    (entry,) = [t for t in map(json.loads, tokens_cli(hub, "list", "--json").stdout.splitlines())
                if t["name"] == "li-tablet"]
    assert tokens_cli(hub, "revoke", entry["id"]).returncode == 0
    # Well inside the 15 s keepalive, after which the stream used to notice.
    wait_until(lambda: all(s.ended.is_set() for s in streams), 5, what="the revoked token's streams ending")
    assert not bystander.ended.is_set(), "another token's stream goes on"
    assert Stream(hub, token).open().status == 401
    bystander.close()


def test_a_token_holds_at_most_its_share_of_streams(hub: HubProcess) -> None:
    token = make_token(hub, "ops", Role.OPERATOR, communities=("*",))
    first, second = Stream(hub, token).open(), Stream(hub, token).open()
    assert (first.status, second.status) == (200, 200)
    third = Stream(hub, token).open()
    assert third.status == 429 and "already holds 2 live streams" in third.detail, third.detail
    assert not first.ended.is_set() and not second.ended.is_set(), "the open ones are untouched"
    other = Stream(hub, make_token(hub, "viewer", Role.READ_ONLY, communities=("*",))).open()
    assert other.status == 200, "the cap is per token"
    first.close()
    # The server notices the closed connection at its next write or disconnect check: wait for the room.

    def reopened() -> Stream | None:
        stream = Stream(hub, token).open()
        return stream if stream.status == 200 else None

    again = wait_until(reopened, 30, interval=0.5, what="room for a new stream once one closed")
    assert again is not None
    for stream in (second, other, again):
        stream.close()


def test_tokens_expire_and_the_list_says_when(hub: HubProcess) -> None:
    created = tokens_cli(hub, "create", "--name", "visitor", "--role", "read_only", "--community", "sunshine",
                         "--expires", "90d")
    assert created.returncode == 0, created.stderr
    assert "expires 20" in " ".join(created.stderr.split()), created.stderr
    (entry,) = [t for t in map(json.loads, tokens_cli(hub, "list", "--json").stdout.splitlines())
                if t["name"] == "visitor"]
    now = time.time() * 1000
    assert entry["state"] == "live" and now + 90 * DAY_MS - 60_000 < entry["expires_ms"] <= now + 90 * DAY_MS
    table = tokens_cli(hub, "list").stdout
    assert "expires" in table and "visitor" in table
    with client(hub, created.stdout.strip()) as api:
        assert api.get("/api/v1/me").status_code == 200
    for bad in ("90", "soon", "0d", "-1d"):
        refused = tokens_cli(hub, "create", "--name", "x", "--role", "read_only", "--community", "sunshine",
                             "--expires", bad)
        assert refused.returncode == 2 and "not a duration" in refused.stderr, (bad, refused.stderr)

    # A token that expires in a moment: served until then, refused after, and its stream ended.
    store = TokenStore(hub.store_path, url=hub.store_url)
    try:
        now_ms = int(time.time() * 1000)
        _, soon = store.create(name="short", role=Role.OPERATOR, communities=["*"], caregiver=None,
                               now_ms=now_ms, expires_ms=now_ms + 3000)
    finally:
        store.close()
    stream = Stream(hub, soon).open()
    with client(hub, soon) as api:
        assert stream.status == 200 and api.get("/api/v1/me").status_code == 200

        def unauthorized() -> httpx.Response | None:
            response = api.get("/api/v1/me")
            return response if response.status_code == 401 else None

        gone = wait_until(unauthorized, 15, what="the expired token refused")
        assert gone is not None and "expired" in gone.json()["detail"]
    wait_until(stream.ended.is_set, 5, what="the expired token's stream ending")
    (short,) = [t for t in map(json.loads, tokens_cli(hub, "list", "--json").stdout.splitlines())
                if t["name"] == "short"]
    assert short["state"] == "expired"


def test_a_store_from_before_expiry_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE api_tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,"
                   " caregiver TEXT, communities TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,"
                   " created_ms INTEGER NOT NULL, revoked_ms INTEGER)")
        db.execute("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   ("old", "old", "operator", None, '["*"]', "abc", 1, None))
    db.close()
    store = TokenStore(path)
    try:
        (old,) = store.tokens()
        assert (old.id, old.expires_ms, old.state(2)) == ("old", None, "live"), "an old token never expires"
        assert store.live(["old", "nope"], now_ms=2) == {"old"}
    finally:
        store.close()
    assert parse_duration_ms("2w") == 14 * DAY_MS and parse_duration_ms("30m") == 1_800_000
