"""`hub registry export-mosquitto`: the broker's `mosquitto.conf`, `passwd` and `acl` from the registry.

Passwords are random and kept in a secrets file (YAML, user → password, mode 0600, never in git), created
if missing. A re-run keeps every existing user's password, and its hash too when it still matches, so
the files change only when users do; new devices get new passwords, and a device gone from the registry
(or deactivated) loses its credentials. The service accounts' passwords may come from the environment
(the compose stack's `.env`), because the hub's and the healthcheck's must match what they connect with;
each community's alert consumer gets its own generated password, like a device.

Everything is computed before anything is written, and each file is replaced atomically, the secrets
file first: a password in `passwd` always has its secret on disk.
"""

from __future__ import annotations

import os
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml
from rich.console import Console

from hub.broker.acl import (
    HEALTHCHECK_USER,
    HUB_USER,
    BrokerUsersError,
    broker_users,
    render_acl,
)
from hub.broker.config import MosquittoLayout, render_config
from hub.broker.passwd import PasswdError, hash_password, parse_passwd, render_passwd, verify_password
from hub.registry import Registry, RegistryError
from hub.registry_sources import registry_at_start
from hub.settings import Settings, is_placeholder_secret

CONFIG_FILE, PASSWD_FILE, ACL_FILE = "mosquitto.conf", "passwd", "acl"
CERT_FILES = ("certs/ca.crt", "certs/server.crt", "certs/server.key")
# The hub's password also goes into HUB_MQTT_URL, where anything but these would need percent-encoding.
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")
_SECRETS_HEADER = (
    "# MQTT passwords, one per broker user, kept by `hub registry export-mosquitto`.\n"
    "# Give each device its own; keep this file secret (mode 0600) and out of version control.\n"
)


class ExportError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ExportReport:
    users: dict[str, int]  # per role
    added: list[str]
    removed: list[str]
    missing_certs: list[Path]


def export_mosquitto(
    registry: Registry,
    out_dir: Path,
    secrets_path: Path,
    *,
    zigbee2mqtt_base: str = "zigbee2mqtt",
    service_passwords: Mapping[str, str] | None = None,
    environment: Literal["development", "production"] = "development",
    max_payload_bytes: int = 64 * 1024,
) -> ExportReport:
    """Write `out_dir`/{mosquitto.conf, passwd, acl} and update `secrets_path`; see the module doc.
    `service_passwords` sets passwords of service accounts (hub, healthcheck)."""
    if secrets_path.resolve().is_relative_to(out_dir.resolve()):
        raise ExportError(f"the secrets file {secrets_path} must not be in {out_dir}: that directory is "
                          "mounted into the broker, and the passwords would go with it")
    try:
        users = broker_users(registry, zigbee2mqtt_base)
    except BrokerUsersError as exc:
        raise ExportError(str(exc)) from None
    given = _checked_service_passwords(service_passwords or {}, environment)
    kept = _read_secrets(secrets_path)
    passwords = {u.name: given.get(u.name) or kept.get(u.name) or secrets.token_urlsafe(24) for u in users}
    old_hashes = _read_passwd(out_dir / PASSWD_FILE)
    hashes = {name: old_hashes[name] if verify_password(password, old_hashes.get(name, "")) else
              hash_password(password) for name, password in passwords.items()}

    out_dir.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(dict(sorted(passwords.items())), default_flow_style=False, sort_keys=False)
    _replace(secrets_path, _SECRETS_HEADER + body, mode=0o600)
    _replace(out_dir / PASSWD_FILE, render_passwd(hashes), mode=0o600)
    _replace(out_dir / ACL_FILE, render_acl(users), mode=0o644)
    _replace(out_dir / CONFIG_FILE, render_config(MosquittoLayout(max_payload_bytes=max_payload_bytes)),
             mode=0o644)
    return ExportReport(
        users=dict(Counter(u.role for u in users)),
        added=sorted(set(passwords) - set(kept)),
        removed=sorted(set(kept) - set(passwords)),
        missing_certs=[out_dir / name for name in CERT_FILES if not (out_dir / name).is_file()],
    )


def _checked_service_passwords(given: Mapping[str, str], environment: str) -> dict[str, str]:
    services = {HUB_USER, HEALTHCHECK_USER}
    unknown = set(given) - services
    if unknown:
        raise ExportError(f"not service accounts: {', '.join(sorted(unknown))}")
    chosen = {user: password for user, password in given.items() if password}
    problems = [f"{user}'s password looks like a placeholder" for user, password in sorted(chosen.items())
                if environment != "development" and is_placeholder_secret(password)]
    if HUB_USER in chosen and not _URL_SAFE.match(chosen[HUB_USER]):
        problems.append("hub's password may only have letters, digits and . _ ~ - (it is in HUB_MQTT_URL)")
    if problems:
        raise ExportError("; ".join(problems))
    return chosen


def _read_secrets(path: Path) -> dict[str, str]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExportError(f"cannot read the secrets file {path}: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in [*raw, *raw.values()]):
        raise ExportError(f"the secrets file {path} must map user names to passwords (strings)")
    return raw


def _read_passwd(path: Path) -> dict[str, str]:
    try:
        return parse_passwd(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, PasswdError) as exc:
        raise ExportError(f"cannot read the existing password file {path}: {exc}") from exc


def _replace(path: Path, text: str, *, mode: int) -> None:
    """Write `text` to `path` atomically, the file never readable beyond `mode`, even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, mode)  # os.open's mode is filtered by the umask
    tmp.replace(path)


def _registry_to_export(file: Path, store_url: str | None) -> Registry:
    """The registry the broker's users come from: on PostgreSQL the registry in service there, which API
    edits change (the file imported first into a store holding none, as a starting node does); else the
    file."""
    if store_url is None:
        return Registry.load(file)
    kept: int = Settings.model_fields["registry_versions_kept"].default
    return registry_at_start(store_url, file, node="export-mosquitto", kept=kept)[1]


def export_mosquitto_command(
    *,
    registry: Annotated[Path, typer.Option(
        help="registry YAML or JSON file; with HUB_STORE_URL it only seeds a store holding no registry yet,"
             " and the registry in PostgreSQL is exported", dir_okay=False)],
    out: Annotated[Path, typer.Option(help="the broker's config directory (mounted at /mosquitto/config)",
                                      file_okay=False)],
    secrets_file: Annotated[Path | None, typer.Option(
        "--secrets", dir_okay=False, show_default=False,
        help="passwords per user (YAML, kept 0600) [default: mqtt-secrets.yaml beside DIR, never inside it: "
             "DIR is mounted into the broker]")] = None,
    zigbee2mqtt_base: Annotated[str, typer.Option(envvar="HUB_ZIGBEE2MQTT_BASE_TOPIC",
                                                  help="Zigbee2MQTT's base topic")] = "zigbee2mqtt",
    hub_password: Annotated[str, typer.Option(envvar="MQTT_HUB_PASSWORD", show_default=False,
                                              help="the hub user's password [default: kept or random]")] = "",
    healthcheck_password: Annotated[str, typer.Option(envvar="MQTT_HEALTHCHECK_PASSWORD", show_default=False,
                                                      help="the healthcheck user's password")] = "",
    retired_alert_consumer_password: Annotated[str, typer.Option(
        "--alert-consumer-password", envvar="MQTT_ALERT_CONSUMER_PASSWORD", hidden=True,
        help="retired: each community's consumer has its own generated password")] = "",
    environment: Annotated[str, typer.Option(
        envvar="HUB_ENVIRONMENT", help="production refuses placeholder passwords")] = "development",
    max_payload_bytes: Annotated[int, typer.Option(
        envvar="HUB_MAX_PAYLOAD_BYTES", min=256,
        help="the hub's payload limit; the broker's max_packet_size follows it")] = 64 * 1024,
) -> None:
    """Write the broker's mosquitto.conf, password file and ACL for every device in the registry.

    Pass passwords through the environment variables, not on the command line, where others can see them.
    """
    console = Console(stderr=True, soft_wrap=True)  # paths stay whole, to copy
    # The store the hub nodes share, read alone: Settings() in production also demands settings (the hub's
    # broker URL) that this one-shot, run before the broker exists, does not have.
    store_url = os.environ.get("HUB_STORE_URL") or None
    secrets_file = secrets_file or out.resolve().parent / "mqtt-secrets.yaml"
    if environment not in ("development", "production"):
        console.print(f"[red]--environment must be development or production, not {environment!r}[/red]")
        raise typer.Exit(2)
    try:
        report = export_mosquitto(
            _registry_to_export(registry, store_url), out, secrets_file, zigbee2mqtt_base=zigbee2mqtt_base,
            service_passwords={HUB_USER: hub_password, HEALTHCHECK_USER: healthcheck_password},
            environment="production" if environment == "production" else "development",
            max_payload_bytes=max_payload_bytes,
        )
    except (RegistryError, ExportError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if retired_alert_consumer_password:
        console.print("[yellow]MQTT_ALERT_CONSUMER_PASSWORD is no longer used: the all-communities "
                      "`alert-consumer` is gone; each community's `alert-consumer-<community>` has its own "
                      "password in the secrets file[/yellow]")
    roles = ", ".join(f"{role.replace('_', ' ')}: {n}" for role, n in sorted(report.users.items()))
    console.print(f"[green]ok[/green]: {CONFIG_FILE}, {PASSWD_FILE} and {ACL_FILE} in {out} "
                  f"(users by role: {roles}); passwords in {secrets_file} "
                  f"({len(report.added)} new, {len(report.removed)} removed)")
    for cert in report.missing_certs:
        console.print(f"[yellow]missing {cert}: Mosquitto's TLS listener needs it to start[/yellow]")

