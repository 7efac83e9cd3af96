"""/docs loads only the hub's own files (no CDN), and every one of them is served; there is no /redoc."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.api.support import write_registry
from tests.conftest import StartHub


def test_docs_pages_reference_only_assets_the_hub_serves(start_hub: StartHub, tmp_path: Path) -> None:
    hub = start_hub(write_registry(tmp_path / "registry.yaml"))
    with httpx.Client(base_url=hub.http_url, timeout=10) as http:
        response = http.get("/docs")
        assert response.status_code == 200
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", response.text)
        urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", response.text)  # the document Swagger UI shows
        assert "/openapi.json" in urls, urls
        assert {url.rsplit(".", 1)[-1] for url in urls} >= {"js", "css", "png", "json"}, urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), f"/docs loads {url} from elsewhere"
            assert http.get(url).status_code == 200, url
        assert "http://" not in response.text and "https://" not in response.text
        assert http.get("/redoc").status_code == 404
