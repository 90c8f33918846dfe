"""Where a callback may go: https only (http for allow-listed hosts), never a private or loopback address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ocr_service import webhook_targets
from ocr_service.cli import app
from ocr_service.config import Settings
from ocr_service.webhook_targets import CallbackPolicy, CallbackUrlError, check_callback_url, resolve_callback_target

STRICT = CallbackPolicy()

REFUSED_URLS = [
    "http://hooks.example.com/ocr",  # plain http to a host nobody allowed
    "file:///etc/passwd",
    "gopher://hooks.example.com:70/_x",
    "ftp://hooks.example.com/x",
    "https:///no-host",
    "not a url",
    "https://169.254.169.254/latest/meta-data/",
    "https://127.0.0.1/hooks",
    "https://127.1/hooks",  # short and numeric spellings of loopback resolve like the dotted one
    "https://2130706433/hooks",
    "https://0x7f.0.0.1/hooks",
    "https://10.1.2.3/hooks",
    "https://172.16.0.1/hooks",
    "https://172.31.255.255/hooks",
    "https://192.168.1.10/hooks",
    "https://0.0.0.0/hooks",
    "https://[::1]/hooks",
    "https://[fc00::1]/hooks",
    "https://[fd12:3456::1]/hooks",
    "https://[fe80::1]/hooks",
    "https://[::ffff:127.0.0.1]/hooks",
    "https://localhost/hooks",
    "https://api.localhost/hooks",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_callback_url_that_is_not_https_to_a_public_host_is_refused(url: str):
    with pytest.raises(CallbackUrlError):
        check_callback_url(url, STRICT)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/ocr", "https://93.184.216.34:8443/ocr", "HTTPS://Hooks.Example.com"]
)
def test_an_https_callback_to_a_public_host_is_accepted(url: str):
    assert check_callback_url(url, STRICT) == url


def test_plain_http_is_accepted_only_for_an_allow_listed_host():
    policy = CallbackPolicy(allow_http_hosts=frozenset({"hooks.internal.example"}))
    assert check_callback_url("http://hooks.internal.example:8080/x", policy)
    with pytest.raises(CallbackUrlError):
        check_callback_url("http://other.example/x", policy)
    with pytest.raises(CallbackUrlError):
        check_callback_url("gopher://hooks.internal.example/x", policy)


def test_private_targets_need_the_setting():
    policy = CallbackPolicy(allow_http_hosts=frozenset({"127.0.0.1"}), allow_private_targets=True)
    assert check_callback_url("http://127.0.0.1:9000/hooks", policy)
    assert check_callback_url("https://10.0.0.5/hooks", policy)
    with pytest.raises(CallbackUrlError):
        check_callback_url("http://127.0.0.1:9000/hooks", CallbackPolicy(allow_http_hosts=frozenset({"127.0.0.1"})))


def test_the_policy_comes_from_the_settings_and_is_strict_by_default(monkeypatch):
    assert CallbackPolicy.from_settings(Settings()) == STRICT
    monkeypatch.setenv("OCR_WEBHOOK_ALLOW_HTTP_HOSTS", "hooks.internal, 127.0.0.1")
    monkeypatch.setenv("OCR_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    policy = CallbackPolicy.from_settings(Settings())
    assert policy == CallbackPolicy(frozenset({"hooks.internal", "127.0.0.1"}), True)


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(monkeypatch):
    monkeypatch.setattr(webhook_targets, "_resolve", lambda host, port: ["93.184.216.34", "169.254.169.254"])
    with pytest.raises(CallbackUrlError, match=r"169\.254\.169\.254"):
        resolve_callback_target("https://hooks.example.com/ocr", STRICT)


def test_delivery_is_pinned_to_the_address_that_was_checked(monkeypatch):
    monkeypatch.setattr(webhook_targets, "_resolve", lambda host, port: ["93.184.216.34"])
    target = resolve_callback_target("https://hooks.example.com:8443/ocr?x=1", STRICT)
    assert target.url == "https://93.184.216.34:8443/ocr?x=1"
    assert target.host_header == "hooks.example.com:8443"
    assert target.sni_hostname == "hooks.example.com"
    monkeypatch.setattr(webhook_targets, "_resolve", lambda host, port: ["2606:2800:220:1::1"])
    assert resolve_callback_target("https://hooks.example.com/ocr", STRICT).url == "https://[2606:2800:220:1::1]/ocr"


# --- where a callback URL is set: `keys create --callback-url` ------------------------------------


def keys_create(tmp_path: Path, monkeypatch, url: str, **env: str):
    monkeypatch.setenv("OCR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OCR_DATABASE_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from ocr_service.config import _settings_from_environment, set_settings

    _settings_from_environment.cache_clear()
    set_settings(None)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    try:
        return runner.invoke(app, ["keys", "create", "--name", "app", "--scope", "client", "--callback-url", url])
    finally:
        _settings_from_environment.cache_clear()


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", "gopher://x.example/_"]
)
def test_keys_create_refuses_an_unsafe_callback_url(tmp_path: Path, monkeypatch, url: str):
    result = keys_create(tmp_path, monkeypatch, url)
    assert result.exit_code != 0
    assert "callback" in result.output.lower()


def test_keys_create_takes_an_https_callback_and_an_allowed_local_one(tmp_path: Path, monkeypatch):
    result = keys_create(tmp_path, monkeypatch, "https://hooks.example.com/ocr")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["callback_url"] == "https://hooks.example.com/ocr"
    result = keys_create(
        tmp_path,
        monkeypatch,
        "http://127.0.0.1:9000/hooks",
        OCR_WEBHOOK_ALLOW_HTTP_HOSTS="127.0.0.1",
        OCR_WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
    )
    assert result.exit_code == 0, result.output
