"""Log-in and API authentication.

- `UsernameOrEmailBackend`: log-in by username or email (case-insensitive).
- `TokenAuthentication`: django-rest-knox tokens (`Authorization: Token <token>`).
- Password-guessing protection (django-axes, settings `AXES_*`): `client_ip` says who the
  client is, `login_username` which account an attempt is on, `LoginAttemptHandler`
  counts failures in Redis and `lockout_response` is the admin's lockout page.
"""

import logging
from binascii import Error as BinasciiError
from datetime import datetime
from hmac import compare_digest
from typing import Any

import redis
from axes.handlers.cache import AxesCacheHandler
from axes.helpers import make_cache_key_list
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions

from crm.models import AuthToken, User

logger = logging.getLogger(__name__)


def user_for_login(login: str) -> User | None:
    """The user a log-in names: a username wins over another user's email spelled the same."""
    users = get_user_model()._default_manager
    return users.filter(username=login).first() or users.filter(email__iexact=login).first()


class UsernameOrEmailBackend(ModelBackend):
    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if username is None or password is None:
            return None
        user = user_for_login(username)
        if user is None:
            get_user_model()().set_password(password)  # spend the same time as a real check
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's check of `Authorization: Token <token>`, reading only the live tokens with the
    token's key (expired ones are deleted by `auth_tokens_purge_expired`, not on every
    request as knox does), and moving the expiry forward on use: `TOKEN_TTL` after now,
    never past the token's `max_expiry`, written at most once per `MIN_REFRESH_INTERVAL`.
    """

    def authenticate_credentials(self, token: bytes) -> tuple[User, AuthToken]:
        invalid = exceptions.AuthenticationFailed("Invalid token.")
        try:
            key = token.decode()
            digest = hash_token(key)
        except (UnicodeDecodeError, TypeError, BinasciiError):
            raise invalid from None
        now = timezone.now()
        candidates = AuthToken.objects.filter(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH], expiry__gt=now)
        for auth_token in candidates.select_related("user"):
            if compare_digest(digest, auth_token.digest):
                self.record_use(auth_token, now)
                return self.validate_user(auth_token)
        raise invalid

    def record_use(self, auth_token: AuthToken, now: datetime) -> None:
        interval = knox_settings.MIN_REFRESH_INTERVAL
        if auth_token.last_used_at is not None and (now - auth_token.last_used_at).total_seconds() < interval:
            return
        expiry = now + knox_settings.TOKEN_TTL
        if auth_token.max_expiry is not None:
            expiry = min(expiry, auth_token.max_expiry)
        AuthToken.objects.filter(pk=auth_token.pk).update(expiry=expiry, last_used_at=now)
        auth_token.expiry, auth_token.last_used_at = expiry, now


def client_ip(request: HttpRequest) -> str:
    """The client's address (`AXES_CLIENT_IP_CALLABLE`).

    `REMOTE_ADDR` unless `TRUSTED_PROXY_COUNT` proxies stand in front of Django: then the
    address the outermost of them saw, which is that many entries from the right of
    `X-Forwarded-For` (each proxy appends the address it received the request from).
    Entries further left were written by the client and are ignored.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies == 0:
        return remote
    forwarded = [address.strip() for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [address for address in forwarded if address]
    if not forwarded:
        return remote
    return forwarded[-min(proxies, len(forwarded))]


def login_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account an attempt is on (`AXES_USERNAME_CALLABLE`), so that its username, its
    email and the email's other spellings share one count: the username of the user the
    log-in names, else the log-in folded to lower case."""
    login = (credentials or getattr(request, "data", request.POST)).get("username")
    if not isinstance(login, str) or not login:
        return None
    known: dict[str, str] | None = getattr(request, "_login_usernames", None)
    if known is None:
        known = {}
        request._login_usernames = known  # type: ignore[attr-defined]  # axes asks several times an attempt
    if login not in known:
        user = user_for_login(login)
        known[login] = user.get_username() if user is not None else login.casefold()
    return known[login]


def lockout_seconds() -> int:
    """How long a lockout lasts from now: every refused attempt starts the cool-off again."""
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


class LoginAttemptHandler(AxesCacheHandler):
    """axes' Redis counter, except that a successful log-in clears only the account's count,
    and that it fails open while Redis is down.

    axes also clears the client address's count, so an attacker who owns one account could
    log in to it between guesses at others and never be throttled by address.

    Failing open: with Redis unreachable the counts read as 0 (crm.cache) and a failure is not
    counted, so log-in keeps working and nobody is locked out. Failing closed would lock every
    user out of the admin and out of new API tokens for as long as Redis is down; the outage
    is visible (`/healthz` 503, a warning per skipped count) and guessing is still slowed by
    the password hash.
    """

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
        try:
            super().user_login_failed(sender, credentials, request, **kwargs)
        except redis.RedisError:
            logger.warning("A failed log-in was not counted: Redis is unreachable.", exc_info=True)

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        self.cache.delete_many(make_cache_key_list([{"username": user.get_username()}]))


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: Any) -> HttpResponse:
    """The admin's page for a locked-out log-in (`AXES_LOCKOUT_CALLABLE`): 429 and Retry-After."""
    seconds = lockout_seconds()
    response = render(
        request,
        "admin/login_locked.html",
        {**admin.site.each_context(request), "title": "Too many log-in attempts", "minutes": -(-seconds // 60)},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
