"""`mosquitto.conf`, rendered from the packaged template. The defaults are the paths and ports of the
compose stack's `eclipse-mosquitto:2` container; tests render the same template onto temporary paths and
free loopback ports, so what they run is what production runs."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from string import Template

TEMPLATE = "mosquitto.conf.template"
# What an MQTT PUBLISH carries besides its payload: fixed header, topic (ids of up to 64 characters, or a
# Zigbee2MQTT friendly name) and properties.
PACKET_OVERHEAD = 4096


def max_packet_size(max_payload_bytes: int) -> int:
    """The broker's packet limit for the hub's payload limit."""
    return max_payload_bytes + PACKET_OVERHEAD


@dataclass(frozen=True, slots=True)
class MosquittoLayout:
    config_dir: str = "/mosquitto/config"  # passwd, acl and certs/ live here
    data_dir: str = "/mosquitto/data"
    plain_port: int = 1883
    tls_port: int = 8883
    bind_address: str | None = None  # None: every interface (in the container: its own network only)
    log_dest: str = "stdout"
    run_as: str | None = None  # None: the image's `mosquitto` user, which Mosquitto drops to when root
    max_payload_bytes: int = 64 * 1024  # the hub's HUB_MAX_PAYLOAD_BYTES


def render_config(layout: MosquittoLayout | None = None) -> str:
    layout = layout or MosquittoLayout()
    template = Template(resources.files("hub.broker").joinpath(TEMPLATE).read_text(encoding="utf-8"))
    bind = f" {layout.bind_address}" if layout.bind_address else ""
    return template.substitute(
        config_dir=layout.config_dir, data_dir=layout.data_dir,
        plain_port=layout.plain_port, plain_bind=bind, tls_port=layout.tls_port, tls_bind=bind,
        log_dest=layout.log_dest, run_as=f"user {layout.run_as}" if layout.run_as else "",
        max_packet_size=max_packet_size(layout.max_payload_bytes),
    )
