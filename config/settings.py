"""Genvault settings. Every value comes from the environment through config.env, with
embedded defaults that run a fresh checkout on SQLite, local storage and a file-based
Celery broker under var/. README.md lists every variable."""

from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from boto3.s3.transfer import TransferConfig
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

# Lets generic Django classes be subscripted at runtime (ModelAdmin[Model], File[bytes]).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("GENVAULT_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0")
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 (debug only)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "generations",
    "history",
    "storage",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files in production; runserver serves them in debug.
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# Database ---------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "genvault.sqlite3"),
            # A file, not memory, so that a worker process started by a test sees it.
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker write concurrently: WAL lets readers run beside the writer, and
    # IMMEDIATE takes the write lock up front instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Storage ----------------------------------------------------------------------------

ASSET_URL_EXPIRE_SECONDS = env_int("ASSET_URL_EXPIRE_SECONDS", 900, minimum=1)
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
# Where browsers reach the S3 server when it differs from where the app reaches it
# (docker-compose: the app talks to http://minio:9000, browsers to http://localhost:9000).
AWS_S3_PUBLIC_ENDPOINT_URL = env_str("AWS_S3_PUBLIC_ENDPOINT_URL")


def _upload_transfer_config() -> TransferConfig:
    """Uploads stream in 8 MiB parts, two in flight. s3transfer reads parts ahead of the
    uploads into memory (by default up to 10 of them, 80 MiB); with two, saving a 512 MB
    file grew the process by 29 MB (docs/performance.md)."""
    config = TransferConfig(
        multipart_threshold=8 * 1024 * 1024,
        multipart_chunksize=8 * 1024 * 1024,
        max_concurrency=2,
        io_chunksize=256 * 1024,
    )
    config.max_in_memory_upload_chunks = 2
    config.max_submission_concurrency = 1
    return config


def _s3_client_config(addressing_style: str) -> Any:
    """Timeouts and retries for every S3 request, so that a hung or unreachable server
    fails a request in seconds instead of holding a worker or a page. (Given a client
    configuration, django-storages no longer applies its own signature and addressing
    options, so they are set here too.)"""
    from botocore.config import Config

    return Config(
        signature_version="s3v4",
        s3={"addressing_style": addressing_style},
        connect_timeout=env_int("AWS_S3_CONNECT_TIMEOUT_SECONDS", 5, minimum=1),
        read_timeout=env_int("AWS_S3_READ_TIMEOUT_SECONDS", 30, minimum=1),
        retries={
            "mode": env_str("AWS_S3_RETRY_MODE", "standard"),
            "max_attempts": env_int("AWS_S3_MAX_ATTEMPTS", 3, minimum=1),
        },
    )


if AWS_STORAGE_BUCKET_NAME:
    _addressing_style = env_str("AWS_S3_ADDRESSING_STYLE", "path")
    _media_storage: dict[str, Any] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "region_name": env_str("AWS_S3_REGION_NAME", "us-east-1"),
            # Private objects, reachable only through presigned URLs that expire.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": ASSET_URL_EXPIRE_SECONDS,
            # A retried write lands on its own key instead of a suffixed copy.
            "file_overwrite": True,
            "transfer_config": _upload_transfer_config(),
            "client_config": _s3_client_config(_addressing_style),
        },
    }
else:
    _media_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media"), "allow_overwrite": True},
    }

STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        ),
    },
}

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Celery -----------------------------------------------------------------------------

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    # kombu's filesystem transport: a broker that needs no server, for local use.
    _broker_dir = VAR_DIR / "celery" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "genvault"
# Celery's Django fixup would otherwise close the database connection before and after
# every task, so each item paid for a new connection; config/celery.py applies Django's
# own rule instead (CONN_MAX_AGE, and closing a connection that has failed).
CELERY_DB_REUSE_MAX = 10_000
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celery" / "beat-schedule")

# Pipeline ---------------------------------------------------------------------------

GENVAULT_DEFAULT_PROVIDER = env_str("GENVAULT_DEFAULT_PROVIDER", "local")

# The superuser `manage.py ensure_admin` creates when there is none (`make run`, compose);
# without a password one is generated and printed once.
SUPERUSER_USERNAME = env_str("DJANGO_SUPERUSER_USERNAME", "admin")
SUPERUSER_PASSWORD = env_str("DJANGO_SUPERUSER_PASSWORD")
SUPERUSER_EMAIL = env_str("DJANGO_SUPERUSER_EMAIL")
ITEM_MAX_ATTEMPTS = env_int("ITEM_MAX_ATTEMPTS", 3, minimum=1)
ITEM_RETRY_BACKOFF_SECONDS = env_int("ITEM_RETRY_BACKOFF_SECONDS", 2, minimum=0)
# The longest wait before an automatic retry, however many attempts came before.
ITEM_RETRY_MAX_DELAY_SECONDS = 300
# Media storage unreachable: items wait and retry (at least this often) for this long
# before they fail as storage_unavailable.
STORAGE_OUTAGE_SECONDS = env_int("STORAGE_OUTAGE_SECONDS", 300, minimum=0)
STORAGE_RETRY_MAX_DELAY_SECONDS = 30
ITEM_TIME_LIMIT_SECONDS = env_int("ITEM_TIME_LIMIT_SECONDS", 600, minimum=10)
# A running item's worker says it is alive this often (its lease is renewed)...
ITEM_HEARTBEAT_SECONDS = env_int("ITEM_HEARTBEAT_SECONDS", 5, minimum=1)
# ...and one silent for this long is presumed lost: its items are taken back. Three
# heartbeats at least, so that one slow write does not look like a death.
ITEM_LEASE_SECONDS = env_int("ITEM_LEASE_SECONDS", 30, minimum=3 * ITEM_HEARTBEAT_SECONDS)
PENDING_REDISPATCH_SECONDS = env_int("PENDING_REDISPATCH_SECONDS", 30, minimum=1)
RECOVERY_INTERVAL_SECONDS = env_int("RECOVERY_INTERVAL_SECONDS", 10, minimum=1)
TRASH_RETENTION_DAYS = env_int("TRASH_RETENTION_DAYS", 30, minimum=0)
SOURCE_MAX_BYTES = env_int("SOURCE_MAX_BYTES", 500 * 1024 * 1024, minimum=1)
SOURCE_FETCH_TIMEOUT_SECONDS = env_int("SOURCE_FETCH_TIMEOUT_SECONDS", 60, minimum=1)
# Lets a source URL point at this machine; for local development and tests only.
SOURCE_FETCH_ALLOW_LOOPBACK = env_bool("SOURCE_FETCH_ALLOW_LOOPBACK", False)

CELERY_TASK_TIME_LIMIT = ITEM_TIME_LIMIT_SECONDS + 30
CELERY_TASK_SOFT_TIME_LIMIT = ITEM_TIME_LIMIT_SECONDS
# Recovery has a queue of its own, served by its own process (`make run`, compose), so that
# a work pool that is full or hung never delays it.
RECOVERY_QUEUE = "genvault.recovery"
CELERY_TASK_ROUTES = {"generations.tasks.recover_stuck_work": {"queue": RECOVERY_QUEUE}}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis hands an unacknowledged message out again after this long. It must outlast the
    # longest retry countdown plus a task's time limit, or a message waiting for its
    # countdown would be delivered twice; messages lost with a worker are recovered much
    # sooner than that, from the rows (ITEM_LEASE_SECONDS).
    CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = (
        ITEM_RETRY_MAX_DELAY_SECONDS + CELERY_TASK_TIME_LIMIT + 60
    )
CELERY_BEAT_SCHEDULE = {
    "recover-stuck-work": {
        "task": "generations.tasks.recover_stuck_work",
        "schedule": float(RECOVERY_INTERVAL_SECONDS),
    },
    "purge-expired-trash": {
        "task": "generations.tasks.purge_expired_trash",
        "schedule": 3600.0,
    },
}

# HTTP, auth and security ------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "history:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", not DEBUG)
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Caches: throttling counts requests here, so processes must share it in production.
CACHE_URL = env_str("CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# API --------------------------------------------------------------------------------

GENVAULT_MAX_ACTIVE_GENERATIONS = env_int("GENVAULT_MAX_ACTIVE_GENERATIONS", 10, minimum=1)
API_PAGE_SIZE = 20
API_MAX_PAGE_SIZE = 100
# Page-number pagination counts at most this many rows; past it the total is "10000+".
API_COUNT_CAP = 10_000
# JSON bodies are small; uploads (multipart) may be up to SOURCE_MAX_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "history.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "create": env_str("API_CREATE_RATE", "30/min"),
        "read": env_str("API_READ_RATE", "600/min"),
        "action": env_str("API_ACTION_RATE", "120/min"),
    },
    "EXCEPTION_HANDLER": "history.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Genvault API",
    "DESCRIPTION": (
        "Submit AI media generations, follow their progress and fetch their results. "
        "Authenticate with an API key: `Authorization: Bearer gv_...`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "GenerationStatusEnum": "generations.states.GenerationStatus",
        "ItemStatusEnum": "generations.states.ItemStatus",
    },
}
