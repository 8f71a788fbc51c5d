"""The webhook step's channel: a signed JSON POST to an http(s) URL, never to a private address.

The body is signed with HMAC-SHA256 over `<timestamp>.<body>` with CAMPAIGN_WEBHOOK_SECRET:
`X-Ridgeline-Signature: t=<timestamp>,v1=<hex>`. `X-Ridgeline-Delivery` carries the execution id,
the same on every retry, so a receiver can drop a repeat. Loopback, private, link-local and other
non-public addresses are refused unless CAMPAIGN_WEBHOOK_ALLOW_PRIVATE is on; redirects are not
followed (a redirect could lead to such an address).

The host is resolved once, and the connection goes to the address that was checked (the Host
header, TLS SNI and the certificate check still use the host's name): a DNS answer that
changes between the check and the connection (DNS rebinding) cannot turn a public host into
a private address. Proxies from the environment are not used, for the same reason.
"""

import functools
import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder


@dataclass(frozen=True)
class Delivery:
    """What the receiver answered: `status` (0: no answer), `error` (empty: delivered), and
    whether trying again later may succeed (`transient`: no answer, 429, 5xx)."""

    status: int
    error: str = ""
    transient: bool = False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to `address` for the URL's host."""

    def __init__(self, host: str, *, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """A TLS connection to `address`, with the URL's host for SNI and the certificate check."""

    def __init__(self, host: str, *, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        # _context: the SSLContext HTTPSConnection builds in __init__ (verifying by default).
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_PinnedHTTPConnection, address=self.address), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_PinnedHTTPSConnection, address=self.address), req)


@dataclass(frozen=True)
class Target:
    """Where `url` is called (`address`), or why not (`refusal`; `transient` when the name did
    not resolve, which may pass)."""

    address: str = ""
    refusal: str = ""
    transient: bool = False


def address_check(url: str) -> Target:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return Target(refusal="The URL's port is not a port number.")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Target(refusal="Only http(s) URLs are called.")
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return Target(refusal=f"{parts.hostname} does not resolve: {exc}", transient=True)
    # An IPv6 link-local answer carries its interface ("fe80::1%eth0"): the address is before it.
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not settings.CAMPAIGN_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if not address.is_global:
                return Target(refusal=f"{parts.hostname} resolves to {address}, a non-public address.")
    return Target(address=str(infos[0][4][0]))


def sign(body: bytes, timestamp: int) -> str:
    digest = hmac.new(settings.CAMPAIGN_WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def webhook_post(*, url: str, payload: dict[str, Any], delivery_id: str) -> Delivery:
    if not settings.CAMPAIGN_WEBHOOK_SECRET:
        return Delivery(status=0, error="CAMPAIGN_WEBHOOK_SECRET is not set: nothing is sent unsigned.")
    target = address_check(url)
    if target.refusal:
        return Delivery(status=0, error=target.refusal, transient=target.transient)
    body = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Ridgeline-Campaigns",
            "X-Ridgeline-Delivery": delivery_id,
            "X-Ridgeline-Signature": sign(body, int(time.time())),
        },
    )
    opener = urllib.request.build_opener(
        _NoRedirect,
        urllib.request.ProxyHandler({}),
        _PinnedHTTPHandler(target.address),
        _PinnedHTTPSHandler(target.address),
    )
    try:
        with opener.open(request, timeout=settings.CAMPAIGN_WEBHOOK_TIMEOUT_SECONDS) as response:
            return Delivery(status=response.status)
    except urllib.error.HTTPError as exc:
        transient = exc.code == 429 or exc.code >= 500
        return Delivery(status=exc.code, error=f"The receiver answered {exc.code}.", transient=transient)
    except (urllib.error.URLError, OSError) as exc:
        return Delivery(status=0, error=f"No answer from the receiver: {exc}", transient=True)
