"""Settings refuse what Ridgeline cannot run on: SQLite, and production without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from crm.settings.base import database_from_url

ROOT = Path(settings.BASE_DIR)
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
        "-c", "import django; django.setup()", DJANGO_SETTINGS_MODULE="crm.settings.production", SECRET_KEY="s" * 50
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: The environment variable ALLOWED_HOSTS is required in "
        "production (comma-separated host names, e.g. api.ridgeline.example)."
    )


def test_production_starts_with_its_secrets():
    result = run(
        "-c",
        "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG, s.ALLOWED_HOSTS)",
        DJANGO_SETTINGS_MODULE="crm.settings.production",
        SECRET_KEY="s" * 50,
        ALLOWED_HOSTS="api.ridgeline.example, admin.ridgeline.example",
    )

    assert (result.returncode, result.stdout) == (0, "False ['api.ridgeline.example', 'admin.ridgeline.example']\n")


def test_a_boolean_setting_that_is_not_one_is_refused():
    result = run("-c", "import django; django.setup()", DJANGO_SETTINGS_MODULE="crm.settings.base", DEBUG="maybe")

    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: DEBUG='maybe' is not a boolean: use true/false or 1/0."
    )
