"""The fast set (`pytest -m "not integration"`, `make test-fast`) starts no server and no subprocess: a test
without the `integration` mark cannot: tests/conftest.py refuses it, as these two show."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.conftest import ServerOutsideIntegrationError


def test_a_test_without_the_mark_can_start_no_subprocess() -> None:
    with pytest.raises(ServerOutsideIntegrationError, match="mark it `integration`"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_a_test_without_the_mark_can_listen_on_no_socket() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        with pytest.raises(ServerOutsideIntegrationError):
            server.listen()

