"""Settings shared by every environment, read from the environment.

Defaults point at the loopback PostgreSQL and Redis so a new machine runs with no
configuration; `production.py` refuses to start without its secrets.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use true/false or 1/0.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number of at least {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def database_from_url(url: str) -> dj_database_url.DBConfig:
    """Parse DATABASE_URL, refusing anything but PostgreSQL."""
    scheme = urlsplit(url).scheme
    if scheme.startswith("sqlite"):
        raise ImproperlyConfigured(
            f"DATABASE_URL points at SQLite ({url!r}), but Ridgeline requires PostgreSQL: "
            "it relies on triggers, generated full-text search columns, partial unique "
            "indexes, row locks and set_config(), which SQLite does not have. "
            "Set DATABASE_URL=postgres://user@host:5432/dbname."
        )
    if scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {scheme!r} is not supported: Ridgeline requires PostgreSQL "
            "(postgres://user@host:5432/dbname)."
        )
    config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    config["ENGINE"] = "django.db.backends.postgresql"
    # A database that does not answer fails a request fast (a 503, crm/api/errors.py) instead
    # of holding a web worker; a `connect_timeout` in the URL's query wins.
    config.setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1))
    return config


DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 (production refuses it)
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
DEBUG = env_bool("DEBUG", True)
# The DEBUG error page, without printing every variable of every frame in full.
DEFAULT_EXCEPTION_REPORTER = "crm.debug.BoundedExceptionReporter"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ridgeline")
DATABASES = {"default": database_from_url(DATABASE_URL)}
# Row-level security (docs/operations.md, "Database roles"): the application connects with
# DATABASE_URL as a role that owns nothing and bypasses no policy; `migrate` and the owner-level
# commands (crm.db.use_owner_credentials) connect with MIGRATE_DATABASE_URL as the tables' owner.
# Unset, it is DATABASE_URL: one role does both (the owner bypasses the policies only if superuser).
MIGRATE_DATABASE_URL = os.environ.get("MIGRATE_DATABASE_URL") or DATABASE_URL
# The application's role: migrate grants it the tables (crm.db.grant_app_role) when it exists,
# and `make setup` creates it on the local server.
DATABASE_APP_ROLE = os.environ.get("DATABASE_APP_ROLE", "ridgeline_app")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# How long a Redis connection or command may take before it counts as Redis being down.
REDIS_TIMEOUT_SECONDS = env_int("REDIS_TIMEOUT_SECONDS", 2, minimum=1)
REDIS_OPTIONS = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS}
# Fail-open: while Redis is down a read misses and a write is skipped (logged), so the API keeps
# serving from PostgreSQL (crm/cache.py says what that costs).
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "crm.cache.FailOpenRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "ridgeline",
        "OPTIONS": REDIS_OPTIONS,
    }
}

# How many reverse proxies in front of Django append to X-Forwarded-For. The client's
# address is REMOTE_ADDR when 0, else the address the outermost trusted proxy saw;
# anything further left in the header was written by the client and is never trusted.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Password guessing (django-axes, counted in Redis), on POST /api/v1/auth/token/ and the
# admin's log-in alike: after LOGIN_FAILURE_LIMIT failed attempts from one client address,
# or on one account from any address, every attempt (even with the right password) is
# refused with a 429 until LOGIN_LOCKOUT_SECONDS pass without one. A successful log-in
# clears the account's count.
AXES_HANDLER = "crm.auth.LoginAttemptHandler"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_CLIENT_IP_CALLABLE = "crm.auth.client_ip"
AXES_USERNAME_CALLABLE = "crm.auth.login_username"
AXES_LOCKOUT_CALLABLE = "crm.auth.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False  # the cache handler keeps no rows to show
AXES_VERBOSE = False  # log failures with the parameters that count, not a banner on every start

# API tokens (django-rest-knox): hashed, ending API_TOKEN_TTL_DAYS after their last use.
KNOX_TOKEN_MODEL = "crm.AuthToken"  # noqa: S105 (a model, not a secret)
# knox's own migrations create its default table even when KNOX_TOKEN_MODEL replaces it
# (with a foreign key to users that nothing uses): crm's migrations create ours instead.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env_int("API_TOKEN_TTL_DAYS", 14, minimum=1)),
    "AUTH_HEADER_PREFIX": "Token",
    # Recognisable in a leak (secret scanners, logs); the rest is 64 random hex digits.
    "TOKEN_PREFIX": "rdg_",
    # Use moves a token's expiry forward at most once a minute (one UPDATE).
    "MIN_REFRESH_INTERVAL": 60,
}

# Email (membership invitations): Django's backend, chosen by the environment. The console
# backend prints messages (development); production defaults to SMTP at EMAIL_HOST.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Ridgeline <no-reply@localhost>")
# django-anymail (EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend): every ANYMAIL_<NAME>
# variable is its setting <NAME>, e.g. ANYMAIL_POSTMARK_SERVER_TOKEN, ANYMAIL_MAILGUN_API_KEY,
# ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY (strings). ANYMAIL_WEBHOOK_SECRET is the basic-auth
# `user:password` the ESP's tracking webhooks send (several, comma-separated, while rotating);
# the webhooks (/webhooks/anymail/<esp>/tracking/) are mounted only when it is set.
ANYMAIL: dict[str, Any] = {
    name.removeprefix("ANYMAIL_"): value for name, value in os.environ.items() if name.startswith("ANYMAIL_")
}
ANYMAIL_WEBHOOK_SECRETS = env_list("ANYMAIL_WEBHOOK_SECRET", [])
for _secret in ANYMAIL_WEBHOOK_SECRETS:
    if ":" not in _secret:
        raise ImproperlyConfigured(
            "ANYMAIL_WEBHOOK_SECRET is the basic auth the ESP sends, `user:password` (comma-separated when several): "
            "one has no colon."
        )
if ANYMAIL_WEBHOOK_SECRETS:
    ANYMAIL["WEBHOOK_SECRET"] = ANYMAIL_WEBHOOK_SECRETS
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", "")  # the file backend's folder (one file per connection)

# Membership invitations: the emailed link (`{token}` is replaced by the signed token) and
# how long it works. A newer invitation to the same membership replaces the link.
INVITATION_ACCEPT_URL = os.environ.get(
    "INVITATION_ACCEPT_URL", "http://localhost:8000/api/v1/invitations/accept/?token={token}"
)
if "{token}" not in INVITATION_ACCEPT_URL:
    raise ImproperlyConfigured(f"INVITATION_ACCEPT_URL={INVITATION_ACCEPT_URL!r} must contain {{token}}.")
INVITATION_MAX_AGE = timedelta(days=env_int("INVITATION_MAX_AGE_DAYS", 7, minimum=1))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "knox",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "anymail",
    "crm",
    "contacts",
    "campaigns",
    "impersonation",
    "ai_chat",
    "filters",
    "substatus",
    "legacy_import",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The admin's transaction, with its tenant (or the cross-tenant path) published (issue 17).
    "crm.middleware.AdminRowSecurityMiddleware",
    "crm.middleware.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out admin log-in into its lockout page.
    "axes.middleware.AxesMiddleware",
]

# The actor middleware asks this function for the request's active impersonation (see
# crm/middleware.py); None turns impersonation off.
ACTOR_IMPERSONATION_RESOLVER: str | None = "impersonation.requests.impersonation_for_request"

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "crm.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses every attempt of a locked-out client or account before a password is checked.
    "axes.backends.AxesStandaloneBackend",
    "crm.auth.UsernameOrEmailBackend",
]
# Django's default hashers, then bcrypt: users imported from the old system (import_legacy) keep
# their bcrypt hashes as `bcrypt$<hash>`, rehashed with the first hasher on their first log-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Django's own console handler (DEBUG only) would print its lines a second time.
    "loggers": {"django": {"handlers": ["console"], "propagate": False}},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # An impersonation token (`rdgimp_...`), found by the actor middleware.
        "impersonation.authentication.ImpersonationTokenAuthentication",
        # Token first: its WWW-Authenticate header turns "no credentials" into a 401.
        "crm.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's throttles (none today) find the client address the way crm.auth.client_ip does.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_PARSER_CLASSES": ["crm.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "crm.api.pagination.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "crm.api.filtering.FilterBackend",
        "crm.api.filtering.StrictOrderingFilter",
        # ?filter= and ?saved_filter= on views naming a `filter_entity` (contacts, projects, activities)
        "filters.backends.FilterTreeBackend",
    ],
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "crm.api.schema.TenantAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "crm.api.errors.ExceptionHandler",
    "ALLOWED_ERROR_STATUS_CODES": ["400", "401", "403", "404", "405", "406", "413", "415", "429", "500"],
    # Any request may carry a body over DATA_UPLOAD_MAX_MEMORY_SIZE.
    "ERROR_SCHEMAS": {"413": "crm.api.errors.ErrorResponse413Serializer"},
}

# The OpenAPI schema and Swagger UI: open to anyone (development), or to signed-in users
# only (`API_DOCS_PUBLIC=false`, production's default).
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", True)
SPECTACULAR_SETTINGS = {
    "TITLE": "Ridgeline API",
    "DESCRIPTION": (
        "Multi-tenant CRM for roofing contractors. Send `X-Tenant: <subdomain or id>` "
        "when your user belongs to more than one tenant."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["crm.api.permissions.ApiDocsAccess"],
    # Swagger UI's files come from our own static files, not a CDN the network may not reach.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "AbMetricEnum": "campaigns.models.AbMetric.choices",
        "RoleEnum": "crm.models.Role.choices",
        "ProjectContactRoleEnum": "crm.models.ProjectContactRole.choices",
        "ImpersonationStatusEnum": "impersonation.models.ImpersonationStatus.choices",
        "ValidationErrorEnum": "drf_standardized_errors.openapi_serializers.ValidationErrorEnum.choices",
        "ClientErrorEnum": "drf_standardized_errors.openapi_serializers.ClientErrorEnum.choices",
        "ServerErrorEnum": "drf_standardized_errors.openapi_serializers.ServerErrorEnum.choices",
        "ParseErrorCodeEnum": "drf_standardized_errors.openapi_serializers.ParseErrorCodeEnum.choices",
        "ErrorCode401Enum": "drf_standardized_errors.openapi_serializers.ErrorCode401Enum.choices",
        "ErrorCode403Enum": "drf_standardized_errors.openapi_serializers.ErrorCode403Enum.choices",
        "ErrorCode404Enum": "drf_standardized_errors.openapi_serializers.ErrorCode404Enum.choices",
        "ErrorCode405Enum": "drf_standardized_errors.openapi_serializers.ErrorCode405Enum.choices",
        "ErrorCode406Enum": "drf_standardized_errors.openapi_serializers.ErrorCode406Enum.choices",
        "ErrorCode415Enum": "drf_standardized_errors.openapi_serializers.ErrorCode415Enum.choices",
        "ErrorCode429Enum": "drf_standardized_errors.openapi_serializers.ErrorCode429Enum.choices",
        "ErrorCode500Enum": "drf_standardized_errors.openapi_serializers.ErrorCode500Enum.choices",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "crm.api.schema.validation_errors_by_pattern",
    ],
}

# Celery: Redis broker, JSON only, acknowledged after the work is done.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "ridgeline")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Sending a task to a broker that does not answer fails in seconds (the API answers 503), not
# after the operating system's TCP timeout.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "substatus-auto-transition": {
        "task": "substatus.tasks.substatus_auto_transition_task",
        "schedule": 15 * 60,  # seconds; delays are whole hours, so a quarter-hour late at most
    },
    # The analytics read what is not rolled up yet from the history: the more often, the less of it.
    "substatus-stays-refresh": {"task": "substatus.tasks.substatus_stays_refresh_task", "schedule": 60},
    "impersonation-end-stale": {"task": "impersonation.tasks.impersonation_end_stale_task", "schedule": 60},
    "auth-tokens-purge-expired": {"task": "crm.tasks.auth_tokens_purge_expired_task", "schedule": 24 * 60 * 60},
    "campaign-triggers-scan": {"task": "campaigns.tasks.campaign_triggers_scan_task", "schedule": 60},
    "campaigns-check-exits": {"task": "campaigns.tasks.campaigns_check_exits_task", "schedule": 5 * 60},
    "campaign-executions-claim": {"task": "campaigns.tasks.campaign_executions_claim_task", "schedule": 5},
    "campaign-executions-reap": {"task": "campaigns.tasks.campaign_executions_reap_task", "schedule": 60},
    "campaign-ab-tests-decide": {"task": "campaigns.tasks.campaign_ab_tests_decide_task", "schedule": 60},
    "campaign-analytics-refresh": {"task": "campaigns.tasks.campaign_analytics_refresh_task", "schedule": 5 * 60},
    "ai-conversations-retention": {"task": "ai_chat.tasks.conversations_retention_task", "schedule": 24 * 60 * 60},
    "filter-usage-flush": {"task": "filters.tasks.filter_usage_flush_task", "schedule": 10},
    "filter-usage-prune": {"task": "filters.tasks.filter_usage_prune_task", "schedule": 24 * 60 * 60},
}

# Campaign engine: each claim takes at most CAMPAIGN_CLAIM_BATCH_SIZE due executions into one
# task; beat's claim stops while CAMPAIGN_CLAIM_MAX_OUTSTANDING rows are claimed and not yet run
# (size it to what the workers run well within a lease). A claim's lease outlasts the task's
# hard time limit, so a live task never loses its rows to the reaper.
CAMPAIGN_CLAIM_BATCH_SIZE = env_int("CAMPAIGN_CLAIM_BATCH_SIZE", 100, minimum=1)
CAMPAIGN_CLAIM_MAX_OUTSTANDING = env_int("CAMPAIGN_CLAIM_MAX_OUTSTANDING", 2_000, minimum=1)
CAMPAIGN_EXECUTION_LEASE_SECONDS = env_int(
    "CAMPAIGN_EXECUTION_LEASE_SECONDS", CELERY_TASK_TIME_LIMIT + 60, minimum=CELERY_TASK_TIME_LIMIT + 1
)
# The webhook step: the HMAC key of its signature, its timeout, its retries (on no answer, 429
# and 5xx, 1, 2, 4, ... minutes apart), and whether non-public addresses may be called.
CAMPAIGN_WEBHOOK_SECRET = os.environ.get("CAMPAIGN_WEBHOOK_SECRET", "")
CAMPAIGN_WEBHOOK_TIMEOUT_SECONDS = env_int("CAMPAIGN_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
CAMPAIGN_WEBHOOK_MAX_ATTEMPTS = env_int("CAMPAIGN_WEBHOOK_MAX_ATTEMPTS", 5, minimum=1)
CAMPAIGN_WEBHOOK_ALLOW_PRIVATE = env_bool("CAMPAIGN_WEBHOOK_ALLOW_PRIVATE", False)
CAMPAIGN_EMAIL_DOMAIN = os.environ.get("CAMPAIGN_EMAIL_DOMAIN", "ridgeline.localhost")  # the Message-ID's domain
# Where the links in campaign messages point (unsubscribe, open pixel, click redirects) and the
# origin Twilio signs its webhook requests with: the site's public origin, without a path.
CAMPAIGN_PUBLIC_URL = os.environ.get("CAMPAIGN_PUBLIC_URL", "http://localhost:8000").rstrip("/")
# The domains a tenant's sender (`tenants.settings["email_from"]`) may use; empty: any domain
# (the mail provider must still be allowed to send for it: SPF, DKIM).
TENANT_EMAIL_FROM_DOMAINS = [domain.lower() for domain in env_list("TENANT_EMAIL_FROM_DOMAINS", [])]
# SMS: `console` (prints, the default) or `twilio` (its REST API at TWILIO_API_URL). The sender is
# the tenant's `settings["sms_from"]`, else TWILIO_FROM_NUMBER. Numbers without a country code
# get SMS_DEFAULT_COUNTRY_CODE.
SMS_PROVIDER = os.environ.get("SMS_PROVIDER", "console")
if SMS_PROVIDER not in ("console", "twilio"):
    raise ImproperlyConfigured(f"SMS_PROVIDER={SMS_PROVIDER!r}: use console or twilio.")
SMS_TIMEOUT_SECONDS = env_int("SMS_TIMEOUT_SECONDS", 10, minimum=1)
SMS_DEFAULT_COUNTRY_CODE = os.environ.get("SMS_DEFAULT_COUNTRY_CODE", "1")
TWILIO_API_URL = os.environ.get("TWILIO_API_URL", "https://api.twilio.com").rstrip("/")
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER", "")
# Bounces and complaints POSTed by the mail provider (or an adapter in front of it) to
# /api/v1/webhooks/email/<tenant>/events/, signed with HMAC-SHA256 under this secret (empty: refused).
CAMPAIGN_EMAIL_EVENTS_SECRET = os.environ.get("CAMPAIGN_EMAIL_EVENTS_SECRET", "")
CAMPAIGN_EMAIL_EVENTS_TOLERANCE_SECONDS = env_int("CAMPAIGN_EMAIL_EVENTS_TOLERANCE_SECONDS", 300, minimum=1)
# A/B tests: before its end (size or window), a test declares a winner only with at least this
# many sends of each of the two variants compared (the z-test's normal approximation needs them).
CAMPAIGN_AB_MIN_TRIALS = env_int("CAMPAIGN_AB_MIN_TRIALS", 30, minimum=1)
# Analytics: revenue is the approved_value of the contact's projects approved within this many
# days after enrolment; the refresh counts at most this many changed rows per batch.
CAMPAIGN_ATTRIBUTION_WINDOW_DAYS = env_int("CAMPAIGN_ATTRIBUTION_WINDOW_DAYS", 90, minimum=1)
CAMPAIGN_ANALYTICS_BATCH_SIZE = env_int("CAMPAIGN_ANALYTICS_BATCH_SIZE", 5_000, minimum=1)

# AI chat (ai_chat): any OpenAI-compatible chat-completions server (OpenAI, Azure OpenAI, vLLM,
# Ollama, LM Studio, a LiteLLM proxy) when AI_BASE_URL is set; otherwise the offline assistant
# (deterministic, no network). A tenant may choose its own in `tenants.settings["ai"]`
# (`provider`, `model`, `monthly_token_budget`, `retention_days`).
AI_BASE_URL = os.environ.get("AI_BASE_URL", "")
AI_API_KEY = os.environ.get("AI_API_KEY", "")
AI_MODEL = os.environ.get("AI_MODEL", "gpt-4o-mini")
AI_TIMEOUT_SECONDS = float(os.environ.get("AI_TIMEOUT_SECONDS", "60"))
AI_MAX_RETRIES = env_int("AI_MAX_RETRIES", 2)  # on 429, 5xx and timeouts, with exponential backoff
AI_MAX_TOOL_ROUNDS = env_int("AI_MAX_TOOL_ROUNDS", 5, minimum=1)  # per user message
# What one tool result gives the model at most, in characters of JSON (rows past it are left off).
AI_TOOL_RESULT_MAX_CHARS = env_int("AI_TOOL_RESULT_MAX_CHARS", 6000, minimum=500)
AI_MONTHLY_TOKEN_BUDGET = env_int("AI_MONTHLY_TOKEN_BUDGET", 2_000_000)  # per tenant; 0: no limit
AI_RETENTION_DAYS = env_int("AI_RETENTION_DAYS", 365, minimum=1)  # archived or deleted conversations
# US dollars per million tokens, per model (prompt, completion); a model not listed costs 0.
AI_MODEL_PRICES: dict[str, dict[str, str]] = {
    "gpt-4o-mini": {"prompt": "0.15", "completion": "0.60"},
    "gpt-4o": {"prompt": "2.50", "completion": "10.00"},
    "gpt-4.1": {"prompt": "2.00", "completion": "8.00"},
    "gpt-4.1-mini": {"prompt": "0.40", "completion": "1.60"},
}

# Filter usage analytics: each filtered list request pushes its conditions to a Redis list
# (FILTER_USAGE_QUEUE) after the response is built; beat's flush task writes them in bulk
# every 10 seconds, and a daily task deletes logs older than FILTER_USAGE_RETENTION_DAYS.
FILTER_USAGE_LOGGING = env_bool("FILTER_USAGE_LOGGING", True)
FILTER_USAGE_REDIS_URL = REDIS_URL
FILTER_USAGE_QUEUE = os.environ.get("FILTER_USAGE_QUEUE", "ridgeline:filter-usage")
FILTER_USAGE_RETENTION_DAYS = env_int("FILTER_USAGE_RETENTION_DAYS", 180, minimum=1)

# `manage.py schema_check` and `adopt_database` report every table, column, constraint,
# index, trigger, function, view, sequence, type and extension that differs from what
# the migrations create. Objects that belong to other tools are listed here as
# `fnmatch` patterns over the identifiers the report prints (`kind:name` or
# `kind:table.name`), e.g. "extension:pg_stat_statements", "table:celery_*". An ignored
# table takes its columns, constraints, indexes and triggers with it. Ignored objects are
# still listed in the report, under "ignored". See docs/operations.md.
SCHEMA_CHECK_IGNORE: list[str] = []

# Tables that hold many rows in production: `manage.py lint_migrations` (part of
# `make test`) refuses a migration that blocks writes to one of them for a rewrite, a
# full scan or a non-concurrent index build, unless the migration exempts itself with a
# reason (`lint_exemptions`). See crm/schema/lint.py.
MIGRATION_LINT_LARGE_TABLES = ["contacts", "projects", "activities", "substatus_history", "campaign_step_executions"]
