"""Settings refuse what Ridgeline cannot run on (SQLite, production without its secrets or
with a weak key), production is safe by default, and each entry point picks its settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from crm.settings.base import database_from_url

ROOT = Path(settings.BASE_DIR)
STRONG_KEY = "k8#Vq2!pZr7@Lw4$Nd9%Xs1^Hb6&Jt3*Fy5(Gm0)Ce-Ua+Io=Ev"
PRODUCTION = {"DJANGO_SETTINGS_MODULE": "crm.settings.production", "ALLOWED_HOSTS": "api.ridgeline.example"}
SQLITE_MESSAGE = (
    "DATABASE_URL points at SQLite ('sqlite:///x.db'), but Ridgeline requires PostgreSQL: it relies on "
    "triggers, generated full-text search columns, partial unique indexes, row locks and set_config(), "
    "which SQLite does not have. Set DATABASE_URL=postgres://user@host:5432/dbname."
)


def run(*args, **env):
    """Run a Python process from the project root with only the given environment (plus PATH)."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    return subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("url", ["sqlite:///x.db", "sqlite://:memory:"])
def test_database_from_url_refuses_sqlite(url):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        database_from_url(url)

    assert str(excinfo.value) == SQLITE_MESSAGE.replace("'sqlite:///x.db'", repr(url))


def test_database_from_url_refuses_other_databases_without_echoing_the_password():
    with pytest.raises(ImproperlyConfigured) as excinfo:
        database_from_url("mysql://ops:hunter2@db.example.com/ridgeline")

    assert str(excinfo.value) == (
        "DATABASE_URL scheme 'mysql' is not supported: Ridgeline requires PostgreSQL "
        "(postgres://user@host:5432/dbname)."
    )


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql"])
def test_database_from_url_reads_postgresql(scheme):
    config = database_from_url(f"{scheme}://ops:secret@db.example.com:6543/ridgeline")

    assert {key: config[key] for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")} == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "ridgeline",
        "USER": "ops",
        "PASSWORD": "secret",
        "HOST": "db.example.com",
        "PORT": 6543,
    }
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (60, True)


def test_manage_py_refuses_to_start_on_sqlite():
    result = run("manage.py", "check", DATABASE_URL="sqlite:///x.db")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"django.core.exceptions.ImproperlyConfigured: {SQLITE_MESSAGE}"
    assert not (ROOT / "x.db").exists()


def test_production_requires_secret_key():
    result = run(
        "-c",
        "import django; django.setup()",
        DJANGO_SETTINGS_MODULE="crm.settings.production",
        ALLOWED_HOSTS="api.ridgeline.example",
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: The environment variable SECRET_KEY is required in "
        "production (DJANGO_SETTINGS_MODULE=crm.settings.production) and is not set."
    )


def test_production_requires_allowed_hosts():
    result = run(
        "-c", "import django; django.setup()", DJANGO_SETTINGS_MODULE="crm.settings.production", SECRET_KEY=STRONG_KEY
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: The environment variable ALLOWED_HOSTS is required in "
        "production (comma-separated host names, e.g. api.ridgeline.example)."
    )


@pytest.mark.parametrize(
    "key",
    [STRONG_KEY[:49], "dev-only-insecure-key-do-not-use-in-production", "s" * 50, "abcd" * 20],
    ids=["short", "development-key", "one-character", "four-characters"],
)
def test_production_refuses_a_weak_secret_key(key):
    result = run("-c", "import django; django.setup()", **PRODUCTION, SECRET_KEY=key)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is too weak for production: use 50 or more "
        "random characters, not the development key (e.g. python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))')."
    )


@pytest.mark.parametrize("value", ["true", "1", "on"])
def test_production_refuses_debug(value):
    result = run("-c", "import django; django.setup()", **PRODUCTION, SECRET_KEY=STRONG_KEY, DEBUG=value)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: DEBUG is on (the environment variable DEBUG is true) with the "
        "production settings: its error pages show settings, SQL and local variables to anyone. Unset DEBUG or set "
        "DEBUG=false."
    )


def test_database_connections_time_out():
    assert database_from_url("postgres://db.example.com/ridgeline")["OPTIONS"] == {"connect_timeout": 5}
    assert database_from_url("postgres://db.example.com/ridgeline?connect_timeout=9")["OPTIONS"] == {
        "connect_timeout": 9
    }


SHOW_SECURITY = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.ALLOWED_HOSTS, s.API_DOCS_PUBLIC, s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, "
    "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SESSION_COOKIE_SECURE, "
    "s.CSRF_COOKIE_SECURE, s.CSRF_TRUSTED_ORIGINS, s.TRUSTED_PROXY_COUNT)"
)


def test_production_starts_with_its_secrets_and_safe_defaults():
    result = run(
        "-c",
        SHOW_SECURITY,
        DJANGO_SETTINGS_MODULE="crm.settings.production",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="api.ridgeline.example, admin.ridgeline.example",
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "False ['api.ridgeline.example', 'admin.ridgeline.example'] False ('HTTP_X_FORWARDED_PROTO', 'https') "
        "True 31536000 True False True True [] 0\n"
    )


def test_production_security_comes_from_the_environment():
    result = run(
        "-c",
        SHOW_SECURITY,
        **PRODUCTION,
        SECRET_KEY=STRONG_KEY,
        API_DOCS_PUBLIC="true",
        SECURE_PROXY_SSL_HEADER="X-Scheme",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        SECURE_HSTS_PRELOAD="true",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        CSRF_TRUSTED_ORIGINS="https://app.ridgeline.example,https://admin.ridgeline.example",
        TRUSTED_PROXY_COUNT="2",
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "False ['api.ridgeline.example'] True ('HTTP_X_SCHEME', 'https') False 3600 False True False False "
        "['https://app.ridgeline.example', 'https://admin.ridgeline.example'] 2\n"
    )


def test_no_proxy_header_is_trusted_when_it_is_set_empty():
    result = run(
        "-c",
        "import django; django.setup(); from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER)",
        **PRODUCTION,
        SECRET_KEY=STRONG_KEY,
        SECURE_PROXY_SSL_HEADER="",
    )

    assert (result.returncode, result.stdout) == (0, "None\n")


def test_check_deploy_is_clean_with_production_settings():
    result = run(
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **PRODUCTION,
        SECRET_KEY=STRONG_KEY,
        SECURE_HSTS_PRELOAD="true",
        CSRF_TRUSTED_ORIGINS="https://app.ridgeline.example",
        TRUSTED_PROXY_COUNT="1",
    )

    assert (result.returncode, result.stderr, result.stdout) == (
        0,
        "",
        "System check identified no issues (0 silenced).\n",
    )


@pytest.mark.parametrize(
    ("code", "module"),
    [
        ("import crm.wsgi", "crm.settings.production"),
        ("import crm.asgi", "crm.settings.production"),
        ("import crm.celery", "crm.settings.production"),
        ("import manage, sys; sys.argv = ['manage.py', 'check']; manage.main()", "crm.settings.base"),
    ],
    ids=["wsgi", "asgi", "celery", "manage.py"],
)
def test_each_entry_point_defaults_to_its_settings(code, module):
    result = run(
        "-c",
        f"{code}; import os; print(os.environ['DJANGO_SETTINGS_MODULE'])",
        ALLOWED_HOSTS="api.ridgeline.example",
        SECRET_KEY=STRONG_KEY,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == module


def test_the_production_entry_points_refuse_to_start_without_production_secrets():
    result = run("-c", "import crm.wsgi")

    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "django.core.exceptions.ImproperlyConfigured: The environment variable SECRET_KEY is required in production"
        )
    )


def test_a_boolean_setting_that_is_not_one_is_refused():
    result = run("-c", "import django; django.setup()", DJANGO_SETTINGS_MODULE="crm.settings.base", DEBUG="maybe")

    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: DEBUG='maybe' is not a boolean: use true/false or 1/0."
    )


def test_production_refuses_an_anymail_backend_without_its_webhook_secret():
    result = run(
        "-c",
        "import django; django.setup()",
        **PRODUCTION,
        SECRET_KEY=STRONG_KEY,
        EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
    )

    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: EMAIL_BACKEND=anymail.backends.postmark.EmailBackend sends "
        "through an ESP, whose bounce and complaint webhooks need ANYMAIL_WEBHOOK_SECRET (user:password, the basic "
        "auth set in the ESP's webhook URL); it is not set."
    )


def test_a_webhook_secret_that_is_no_basic_auth_is_refused():
    result = run("-c", "import django; django.setup()", **PRODUCTION, SECRET_KEY=STRONG_KEY, ANYMAIL_WEBHOOK_SECRET="x")

    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: ANYMAIL_WEBHOOK_SECRET is the basic auth the ESP sends, "
        "`user:password` (comma-separated when several): one has no colon."
    )


SHOW_ANYMAIL = (
    "import django; django.setup(); from django.conf import settings as s; from django.urls import resolve, "
    "Resolver404\ntry: resolve('/webhooks/anymail/postmark/tracking/'); mounted = True\n"
    "except Resolver404: mounted = False\nprint(mounted, s.ANYMAIL)"
)


def test_anymail_webhooks_are_mounted_only_with_their_secret_and_read_their_settings():
    without = run("-c", SHOW_ANYMAIL, **PRODUCTION, SECRET_KEY=STRONG_KEY)
    with_secret = run(
        "-c",
        SHOW_ANYMAIL,
        **PRODUCTION,
        SECRET_KEY=STRONG_KEY,
        EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
        ANYMAIL_POSTMARK_SERVER_TOKEN="server-token",
        ANYMAIL_WEBHOOK_SECRET="old:secret, new:secret",
    )

    assert (without.returncode, without.stdout) == (0, "False {}\n")
    assert (with_secret.returncode, with_secret.stderr) == (0, "")
    assert with_secret.stdout == (
        "True {'POSTMARK_SERVER_TOKEN': 'server-token', 'WEBHOOK_SECRET': ['old:secret', 'new:secret']}\n"
    )
