"""Serves the API from the hub process: uvicorn in its own thread, with its own event loop, so the MQTT
and store threads never wait on HTTP and HTTP never waits on them."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from hub.api.v1 import close_streams


class ApiServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        # A bounded graceful shutdown: a client holding a response open must not hold the hub's stop.
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=5)
        self._app = app
        self._server = uvicorn.Server(config)
        # Run off the main thread, uvicorn leaves signal handling to the hub (its Ctrl-C and SIGTERM).
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self.url = f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        close_streams(self._app)
        self._server.should_exit = True
        self._thread.join(timeout)
