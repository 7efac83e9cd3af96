"""API bearer tokens: created with `hub tokens create`, kept hashed in the hub's store (`api_tokens`).

A token carries a role and a scope:
- `operator`: reads and acts on everything in its places;
- `supervisor`: reads everything in its places (the registry too) and acts on its alerts; edits nothing;
- `caregiver`: bound to a registry caregiver id; sees and acts on the alerts of the residents that list
  that caregiver, and those residents only (its communities follow from the registry);
- `grid_worker`: its grids (`--grid`, optionally bound to the caregiver who is their worker); sees and
  acts on their residents, homes and alerts;
- `device_admin`: reads and edits the registry in its places, reads alerts, acts on none;
- `read_only`: reads everything in its places, acts on nothing.

A token's places are communities, and cities, districts and subdistricts: it sees the communities below
them as the registry has them at each request, so a community added to a district is seen at once.

A token may expire (`hub tokens create --expires 90d`): from then on it is refused like a revoked one.
`*` as a community means every community. The table lives in the hub's own SQLite file, so a token
created or revoked by the CLI counts at the running hub's next request, with no reload.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hub.migrations import API_TOKENS_TABLE_SQLITE, migrate_postgresql, migrate_sqlite
from hub.postgres import PgConnection
from hub.store import open_sqlite_for_writing

_SCHEMA = f"CREATE TABLE IF NOT EXISTS api_tokens {API_TOKENS_TABLE_SQLITE};"

ALL_COMMUNITIES = "*"
TOKEN_PREFIX = "sch_"  # recognisable in a leaked log or a secret scanner
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # the registry's id syntax


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    CAREGIVER = "caregiver"
    GRID_WORKER = "grid_worker"
    DEVICE_ADMIN = "device_admin"
    READ_ONLY = "read_only"


# The levels a token's places may name, besides communities (a grid only a grid worker's).
ABOVE_COMMUNITIES = ("cities", "districts", "subdistricts")


class TokenError(ValueError):
    """A token that cannot be created or revoked as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    name: str
    role: Role
    caregiver: str | None
    communities: tuple[str, ...]
    created_ms: int
    revoked_ms: int | None
    expires_ms: int | None = None
    cities: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    subdistricts: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()

    @property
    def all_communities(self) -> bool:
        return ALL_COMMUNITIES in self.communities

    def places(self) -> dict[str, tuple[str, ...]]:
        """Its places other than communities, by level (plural), those it has only."""
        named = {"cities": self.cities, "districts": self.districts, "subdistricts": self.subdistricts,
                 "grids": self.grids}
        return {level: ids for level, ids in named.items() if ids}

    def state(self, now_ms: int) -> str:
        """live, revoked or expired."""
        if self.revoked_ms is not None:
            return "revoked"
        return "expired" if self.expires_ms is not None and self.expires_ms <= now_ms else "live"


def _check_scope(role: Role, communities: list[str], caregiver: str | None,
                 places: dict[str, list[str]]) -> None:
    """Refuse a scope the role does not take: each role is scoped one way (see the module docstring)."""
    above = [level for level in ABOVE_COMMUNITIES if level in places]
    if role is Role.CAREGIVER:
        if caregiver is None:
            raise TokenError("a caregiver token needs --caregiver, the caregiver's registry id")
        if communities or places:
            raise TokenError("a caregiver token takes no --community, --district, --grid…: it sees its"
                             " residents' communities")
    elif role is Role.GRID_WORKER:
        if "grids" not in places:
            raise TokenError("a grid_worker token needs --grid (repeatable): the grids it works")
        if communities or above:
            raise TokenError("a grid_worker token takes no --community, --district…: it sees its grids")
    else:
        if caregiver is not None:
            raise TokenError(f"only caregiver and grid_worker tokens take --caregiver, not {role.value}")
        if "grids" in places:
            raise TokenError(f"only grid_worker tokens take --grid, not {role.value}")
        if not communities and not above:
            raise TokenError(f"a {role.value} token needs --community ('*' for every one), --subdistrict,"
                             " --district or --city (each repeatable)")


def token_hash(secret: str) -> str:
    # SHA-256 without salt or stretching on purpose: a token is 32 random bytes (256 bits), so unlike a
    # password it cannot be guessed from its hash, and a fast hash lets every request check it in
    # microseconds. Salting would only forbid the indexed lookup by hash.
    return hashlib.sha256(secret.encode()).hexdigest()


def _token(row: tuple[str, str, str, str | None, str, int, int | None, int | None, str | None]) -> Token:
    token_id, name, role, caregiver, communities, created_ms, revoked_ms, expires_ms, places = row
    named = {level: tuple(ids) for level, ids in json.loads(places or "{}").items()}
    return Token(token_id, name, Role(role), caregiver, tuple(json.loads(communities)), created_ms,
                 revoked_ms, expires_ms, **named)


_COLUMNS = "id, name, role, caregiver, communities, created_ms, revoked_ms, expires_ms, places"
_LIVE = "revoked_ms IS NULL AND (expires_ms IS NULL OR expires_ms > ?)"
_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def parse_duration_ms(text: str) -> int:
    """`90d`, `12h`, `30m`, `2w` in milliseconds; a ValueError saying what is expected otherwise."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration: a whole number and m, h, d or w (e.g. 90d, 12h)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


class TokenStore:
    """The `api_tokens` table. One connection per thread; `read_only` for request-time lookups."""

    def __init__(self, path: Path, *, read_only: bool = False, url: str | None = None) -> None:
        self._db: sqlite3.Connection | PgConnection
        if url is not None:  # the table comes with the store's migrations there
            self._db = PgConnection(url, read_only=read_only)
            if not read_only:
                migrate_postgresql(self._db)
            return
        if read_only:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        else:
            self._db = open_sqlite_for_writing(path)
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(api_tokens)")}
            if "expires_ms" not in columns:  # a store from before tokens could expire
                self._db.execute("ALTER TABLE api_tokens ADD COLUMN expires_ms INTEGER")
            migrate_sqlite(self._db)  # the later steps' columns (places)
        self._db.execute("PRAGMA busy_timeout = 10000")

    def close(self) -> None:
        self._db.close()

    def create(self, *, name: str, role: Role, communities: list[str], caregiver: str | None,
               now_ms: int, expires_ms: int | None = None, places: dict[str, list[str]] | None = None,
               ) -> tuple[Token, str]:
        """A new token and its secret, which is shown once and never stored; refused from `expires_ms`
        on, when given. `places`: ids by level besides communities (`districts`, `grids`…)."""
        if expires_ms is not None and expires_ms <= now_ms:
            raise TokenError("a token must expire in the future")
        name = name.strip()
        if not name:
            raise TokenError("a token needs a name (it is the actor recorded in alert histories)")
        places = {level: list(dict.fromkeys(ids)) for level, ids in (places or {}).items() if ids}
        unknown = set(places) - {*ABOVE_COMMUNITIES, "grids"}
        if unknown:
            raise TokenError(f"no such level for a token's places: {', '.join(sorted(unknown))}")
        _check_scope(role, communities, caregiver, places)
        for value in [*communities, *([caregiver] if caregiver else []), *(v for ids in places.values()
                                                                           for v in ids)]:
            if value != ALL_COMMUNITIES and not _ID_PATTERN.match(value):
                raise TokenError(f"{value!r} is not a registry id ([A-Za-z0-9_.-], up to 64)")
        if self._db.execute(f"SELECT 1 FROM api_tokens WHERE name = ? AND {_LIVE}",
                            (name, now_ms)).fetchone():
            # Names are what the audit history records: two live tokens with one name would blur it.
            raise TokenError(f"a token named {name!r} already exists; revoke it first or pick another name")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = Token(secrets.token_hex(6), name, role, caregiver, tuple(dict.fromkeys(communities)), now_ms,
                      None, expires_ms, **{level: tuple(ids) for level, ids in places.items()})
        self._db.execute(
            f"INSERT INTO api_tokens ({_COLUMNS}, token_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (token.id, token.name, token.role.value, token.caregiver, json.dumps(list(token.communities)),
             token.created_ms, None, token.expires_ms, json.dumps(places) if places else None,
             token_hash(secret)))
        return token, secret

    def tokens(self) -> list[Token]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_ms, id")
        return [_token(row) for row in rows]

    def revoke(self, token_id: str, now_ms: int) -> Token:
        found = self._db.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        if found is None:
            raise TokenError(f"there is no token {token_id!r} (`hub tokens list` shows them)")
        token = _token(found)
        if token.revoked_ms is not None:
            raise TokenError(f"token {token_id!r} ({token.name}) is already revoked")
        self._db.execute("UPDATE api_tokens SET revoked_ms = ? WHERE id = ?", (now_ms, token_id))
        return dataclasses.replace(token, revoked_ms=now_ms)

    def lookup(self, secret: str, now_ms: int) -> Token | None:
        """The live token with this secret; None for an unknown, revoked or expired one."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE token_sha256 = ? AND {_LIVE}",
            (token_hash(secret), now_ms)).fetchone()
        return None if row is None else _token(row)

    def live(self, token_ids: Collection[str], now_ms: int) -> set[str]:
        """Which of these tokens still count (the live streams check theirs every second)."""
        wanted = list(token_ids)
        if not wanted:
            return set()
        rows = self._db.execute(
            f"SELECT id FROM api_tokens WHERE id IN ({', '.join('?' * len(wanted))}) AND {_LIVE}",
            (*wanted, now_ms))
        return {row[0] for row in rows}
