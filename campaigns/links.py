"""The signed links in campaign email: unsubscribe, the open pixel and click redirects.

Each token is `django.core.signing` over a small JSON list that starts with the tenant's id, and
the URL carries the tenant too (`/mail/<tenant>/...`): a token is honoured only under its own
tenant's URL, and a token cannot be made or altered without SECRET_KEY. Links do not expire (an
unsubscribe link must keep working long after the message was sent); rotating SECRET_KEY through
SECRET_KEY_FALLBACKS keeps the old ones working.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse

UNSUBSCRIBE = "campaigns.unsubscribe"
OPEN = "campaigns.open"
CLICK = "campaigns.click"
MAX_URL_LENGTH = 2000

# A URL in a message body; trailing punctuation belongs to the sentence, not the link.
URL_PATTERN = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


class BadToken(Exception):
    """The token was not signed by us, is malformed, or belongs to another tenant."""


def _sign(salt: str, values: list[Any]) -> str:
    return signing.dumps(values, salt=salt, compress=True)


def _unsign(salt: str, token: str, *, tenant_id: int, length: int) -> list[Any]:
    try:
        values = signing.loads(token, salt=salt)
    except (signing.BadSignature, ValueError, UnicodeError) as exc:
        raise BadToken(str(exc)) from exc
    if not isinstance(values, list) or len(values) != length or values[0] != tenant_id:
        raise BadToken("not a token of this tenant")
    return values


def _absolute(name: str, *, tenant_id: int, token: str) -> str:
    return settings.CAMPAIGN_PUBLIC_URL + reverse(name, kwargs={"tenant_id": tenant_id, "token": token})


def unsubscribe_url(*, tenant_id: int, contact_id: int, campaign_id: int) -> str:
    return _absolute(
        "campaign-unsubscribe", tenant_id=tenant_id, token=_sign(UNSUBSCRIBE, [tenant_id, contact_id, campaign_id])
    )


@dataclass(frozen=True)
class Unsubscribe:
    contact_id: int
    campaign_id: int


def unsubscribe_read(token: str, *, tenant_id: int) -> Unsubscribe:
    _tenant, contact_id, campaign_id = _unsign(UNSUBSCRIBE, token, tenant_id=tenant_id, length=3)
    if not isinstance(contact_id, int) or not isinstance(campaign_id, int):
        raise BadToken("malformed")
    return Unsubscribe(contact_id=contact_id, campaign_id=campaign_id)


def open_url(*, tenant_id: int, execution_id: int) -> str:
    return _absolute("campaign-open", tenant_id=tenant_id, token=_sign(OPEN, [tenant_id, execution_id]))


def open_read(token: str, *, tenant_id: int) -> int:
    _tenant, execution_id = _unsign(OPEN, token, tenant_id=tenant_id, length=2)
    if not isinstance(execution_id, int):
        raise BadToken("malformed")
    return execution_id


def trackable(url: str) -> bool:
    """Whether a link may be wrapped in a click redirect: http(s), not too long, not one of ours."""
    parts = urlsplit(url)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and len(url) <= MAX_URL_LENGTH
        and not url.startswith(settings.CAMPAIGN_PUBLIC_URL + "/")
    )


def click_url(*, tenant_id: int, execution_id: int, url: str) -> str:
    return _absolute("campaign-click", tenant_id=tenant_id, token=_sign(CLICK, [tenant_id, execution_id, url]))


@dataclass(frozen=True)
class Click:
    execution_id: int
    url: str


def click_read(token: str, *, tenant_id: int) -> Click:
    """The execution and the URL that was signed; redirecting anywhere else is impossible."""
    _tenant, execution_id, url = _unsign(CLICK, token, tenant_id=tenant_id, length=3)
    if not isinstance(execution_id, int) or not isinstance(url, str) or not trackable(url):
        raise BadToken("malformed")
    return Click(execution_id=execution_id, url=url)


def links_rewrite(text: str, *, tenant_id: int, execution_id: int) -> str:
    """Every trackable http(s) URL in `text` replaced by its signed click redirect."""

    def wrap(match: re.Match[str]) -> str:
        url = match.group(0)
        return click_url(tenant_id=tenant_id, execution_id=execution_id, url=url) if trackable(url) else url

    return URL_PATTERN.sub(wrap, text)
