"""Production settings: secrets and hosts come from the environment or the process refuses
to start; HTTPS, HSTS and secure cookies are on unless the environment says otherwise.

`python manage.py check --deploy` with these settings reports nothing (tests/crm/test_settings.py).
"""

import os

from django.core.exceptions import ImproperlyConfigured

from crm.settings.base import *  # noqa: F403
from crm.settings.base import DEVELOPMENT_SECRET_KEY, SMS_PROVIDER, env_bool, env_int, env_list


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ImproperlyConfigured(
            f"The environment variable {name} is required in production "
            f"(DJANGO_SETTINGS_MODULE=crm.settings.production) and is not set."
        )
    return value


SECRET_KEY = required("SECRET_KEY")
# What Django's own check (security.W009) calls strong enough to sign sessions and tokens.
if SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production: use 50 or more random characters, not the development key "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
DEBUG = env_bool("DEBUG", False)
if DEBUG:
    raise ImproperlyConfigured(
        "DEBUG is on (the environment variable DEBUG is true) with the production settings: its error pages show "
        "settings, SQL and local variables to anyone. Unset DEBUG or set DEBUG=false."
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "The environment variable ALLOWED_HOSTS is required in production "
        "(comma-separated host names, e.g. api.ridgeline.example)."
    )

# HTTPS. Behind a proxy that terminates TLS, Django learns the scheme from the header the
# proxy sets (and overwrites when a client sends it); empty: no proxy header is trusted.
_proxy_ssl_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Browsers remember to use HTTPS only. Preloading is a commitment to browser vendors that
# is slow to undo: opt in.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_CONTENT_TYPE_NOSNIFF = True

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
# An ESP through django-anymail reports bounces and complaints to its webhooks, which are
# mounted only with their basic-auth secret: without it they would be lost (or, mounted, open).
if EMAIL_BACKEND.startswith("anymail.") and not os.environ.get("ANYMAIL_WEBHOOK_SECRET"):
    raise ImproperlyConfigured(
        f"EMAIL_BACKEND={EMAIL_BACKEND} sends through an ESP, whose bounce and complaint webhooks need "
        "ANYMAIL_WEBHOOK_SECRET (user:password, the basic auth set in the ESP's webhook URL); it is not set."
    )
if SMS_PROVIDER == "twilio":
    TWILIO_ACCOUNT_SID = required("TWILIO_ACCOUNT_SID")
    TWILIO_AUTH_TOKEN = required("TWILIO_AUTH_TOKEN")

# The OpenAPI schema and Swagger UI need a signed-in user unless API_DOCS_PUBLIC=true.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", False)
