"""Swagger UI and ReDoc work offline: every asset they load is served by the app itself (issue 13)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from ocr_service.app import build_api
from ocr_service.config import Settings


@pytest.fixture
def client() -> TestClient:
    return TestClient(build_api(Settings()))  # no lifespan: nothing but the routes


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_every_asset_from_the_app(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"""url: ?["']([^"']+)["']""", html)
    assert assets
    assert not [url for url in assets if "//" in url], f"{page} loads from another host"
    assert "fonts.googleapis" not in html
    for url in assets:
        loaded = client.get(url)
        assert loaded.status_code == 200, url
        assert loaded.content, url


def test_the_vendored_assets_carry_their_licences(client):
    for path in ("/static/docs/swagger-ui/LICENSE", "/static/docs/redoc/LICENSE"):
        assert client.get(path).status_code == 200
