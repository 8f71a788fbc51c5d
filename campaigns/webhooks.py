"""The webhook step's channel: a signed JSON POST to an http(s) URL, never to a private address.

The body is signed with HMAC-SHA256 over `<timestamp>.<body>` with CAMPAIGN_WEBHOOK_SECRET:
`X-Ridgeline-Signature: t=<timestamp>,v1=<hex>`. `X-Ridgeline-Delivery` carries the execution id,
the same on every retry, so a receiver can drop a repeat. Loopback, private, link-local and other
non-public addresses are refused unless CAMPAIGN_WEBHOOK_ALLOW_PRIVATE is on; redirects are not
followed (a redirect could lead to such an address).
"""

import hashlib
import hmac
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


def address_refusal(url: str) -> str:
    """Why `url` may not be called (empty: it may)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Only http(s) URLs are called."
    if settings.CAMPAIGN_WEBHOOK_ALLOW_PRIVATE:
        return ""
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError) as exc:
        return f"{parts.hostname} does not resolve: {exc}"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return f"{parts.hostname} resolves to {address}, a non-public address."
    return ""


def sign(body: bytes, timestamp: int) -> str:
    digest = hmac.new(settings.CAMPAIGN_WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def webhook_post(*, url: str, payload: dict[str, Any], delivery_id: str) -> Delivery:
    if not settings.CAMPAIGN_WEBHOOK_SECRET:
        return Delivery(status=0, error="CAMPAIGN_WEBHOOK_SECRET is not set: nothing is sent unsigned.")
    refusal = address_refusal(url)
    if refusal:
        return Delivery(status=0, error=refusal)
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
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=settings.CAMPAIGN_WEBHOOK_TIMEOUT_SECONDS) as response:
            return Delivery(status=response.status)
    except urllib.error.HTTPError as exc:
        transient = exc.code == 429 or exc.code >= 500
        return Delivery(status=exc.code, error=f"The receiver answered {exc.code}.", transient=transient)
    except (urllib.error.URLError, OSError) as exc:
        return Delivery(status=0, error=f"No answer from the receiver: {exc}", transient=True)
