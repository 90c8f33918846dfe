"""Where a status callback may be sent: the destination policy for client callback URLs.

A callback URL is checked twice. When a key is given one (``auth.create_api_key``, hence
``keys create --callback-url``): https only, plain http only for hosts in
``webhook_allow_http_hosts``, no other scheme, and no literal private, loopback, link-local or
otherwise non-public address unless ``webhook_allow_private_targets`` is on. And at every
delivery, after DNS resolution: a public name may since have been pointed at 169.254.169.254 or
127.0.0.1 (DNS rebinding), so every address the name resolves to is checked again and the
request is sent to the address that was checked (``PinnedTarget``), with the original name in
the Host header and for TLS (SNI and certificate), so a second lookup cannot swap it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ocr_service.config import Settings

ALLOWED_SCHEMES = ("https", "http")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class CallbackUrlError(ValueError):
    """A callback URL (or what its host resolves to) is not an allowed destination."""


@dataclass(frozen=True)
class CallbackPolicy:
    # Hosts (lower case, as written in the URL) that may be reached over plain http.
    allow_http_hosts: frozenset[str] = frozenset()
    allow_private_targets: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackPolicy:
        hosts = {host.strip().lower() for host in settings.webhook_allow_http_hosts.split(",") if host.strip()}
        return cls(frozenset(hosts), settings.webhook_allow_private_targets)


@dataclass(frozen=True)
class PinnedTarget:
    """The request to send: ``url`` names the checked address, the rest keeps the original name."""

    url: str
    host_header: str
    sni_hostname: str


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as a number means, including ``127.1``, ``0x7f.0.0.1`` and ``2130706433``
    (the system resolver reads those as IPv4 too)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _refused_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address is not public, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_unspecified or address.is_reserved or not address.is_global:
        return "not public"
    return None


def _split(url: str, policy: CallbackPolicy) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL whose scheme and host the policy allows."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise CallbackUrlError(f"callback URL is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ALLOWED_SCHEMES:
        raise CallbackUrlError(f"callback URL must use https, not {scheme or 'no scheme'!r}")
    if not host:
        raise CallbackUrlError("callback URL has no host")
    if scheme == "http" and host not in policy.allow_http_hosts:
        raise CallbackUrlError(
            f"callback URL must use https (plain http only for hosts in OCR_WEBHOOK_ALLOW_HTTP_HOSTS): {host}"
        )
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _check_address(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: CallbackPolicy) -> None:
    reason = _refused_address(address)
    if reason and not policy.allow_private_targets:
        raise CallbackUrlError(
            f"callback host {host} is a {reason} address ({address}); set OCR_WEBHOOK_ALLOW_PRIVATE_TARGETS to allow it"
        )


def check_callback_url(url: str, policy: CallbackPolicy) -> str:
    """The URL unchanged when it may be stored as a callback; ``CallbackUrlError`` otherwise.

    Without resolving names (a key may be created where the receiver's DNS is not visible):
    literal addresses and ``localhost`` names are checked here, resolved names at delivery.
    """
    _scheme, host, _port = _split(url, policy)
    if not policy.allow_private_targets and (host == "localhost" or host.endswith(".localhost")):
        raise CallbackUrlError(f"callback host {host} is a loopback name")
    address = _literal_address(host)
    if address is not None:
        _check_address(host, address, policy)
    return url


def _resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (a seam for tests)."""
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def resolve_callback_target(url: str, policy: CallbackPolicy) -> PinnedTarget:
    """Check the URL and every address its host resolves to now; the request to send.

    ``CallbackUrlError`` when any address is refused (one bad answer is enough: the
    connection could go to any of them); ``OSError`` when the name does not resolve.
    """
    check_callback_url(url, policy)
    scheme, host, port = _split(url, policy)
    literal = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:  # a scope suffix (fe80::1%eth0) is not part of the address
        addresses = [ipaddress.ip_address(found.split("%")[0]) for found in _resolve(host, port)]
    if not addresses:
        raise OSError(f"no address for {host}")
    for address in addresses:
        _check_address(host, address, policy)
    chosen = addresses[0]
    netloc_host = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    parts = urlsplit(url.strip())
    explicit_port = parts.port
    netloc = f"{netloc_host}:{explicit_port}" if explicit_port else netloc_host
    named_host = f"[{host}]" if ":" in host else host
    host_header = f"{named_host}:{explicit_port}" if explicit_port else named_host
    pinned = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    return PinnedTarget(url=pinned, host_header=host_header, sni_hostname=host)
