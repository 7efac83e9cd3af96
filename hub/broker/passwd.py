"""Mosquitto 2 password files, computed here so the hub's image needs no Mosquitto tools.

One line per user, `user:$7$<iterations>$<salt, base64>$<PBKDF2-HMAC-SHA512 of the password, base64>`,
exactly what `mosquitto_passwd` writes (a 12-byte salt, a 64-byte hash).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping

# mosquitto_passwd's own default. The passwords we hash are random 32-character tokens, which no
# iteration count makes easier or harder to guess from a leaked file; what iterations do cost is broker
# CPU on every connect, and after a broker restart thousands of devices reconnect at once.
ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64
_SCHEME = "7"


class PasswdError(ValueError):
    pass


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return f"${_SCHEME}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `hashed` (a `$7$` entry) is `password`'s; False for anything else, never an exception."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != _SCHEME or not parts[2].isdigit():
        return False
    try:
        salt, expected = base64.b64decode(parts[3], validate=True), base64.b64decode(parts[4], validate=True)
    except binascii.Error:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(expected))
    return hmac.compare_digest(digest, expected)


def render_passwd(hashes: Mapping[str, str]) -> str:
    """The password file, users sorted so that a re-run with the same users writes the same file."""
    return "".join(f"{user}:{hashes[user]}\n" for user in sorted(hashes))


def parse_passwd(text: str) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            raise PasswdError(f"line {number} is not `user:hash`")
        hashes[user] = hashed
    return hashes
