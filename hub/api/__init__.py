"""The hub's HTTP surface (FastAPI): the caregiver/operator API, health, and `/metrics`.

`create_app(services)` builds the app for a running hub's parts (`ApiServices`); `ApiServer` serves it from
the hub process.
"""

from hub.api.app import create_app
from hub.api.server import ApiServer

__all__ = ["ApiServer", "create_app"]
