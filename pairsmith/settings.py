"""Pairsmith settings: one file, driven by the environment.

Every value has a default that works on a developer's machine. Production differs only by environment
variables (DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL); see README "Configuration".
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PAIRSMITH_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_count(name: str, default: int) -> int:
    """A whole number >= 0 from the environment; anything else stops start-up naming the variable."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number (0 or more).")
    return int(value)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

DEVELOPMENT_SECRET_KEY = "django-insecure-pairsmith-development-only-never-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (production).")
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
elif not DEBUG and (SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY is the development key or shorter than 50 characters; set a long random one."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "django_htmx",
    "template_partials",
    "annotate",
    "reviews",
    "exports",
    "models_loop",
    "ninja",  # its static files: the API page (/api/docs) renders the OpenAPI schema with Swagger UI
    "api",
    "preferences",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "pairsmith.middleware.ContentSecurityPolicyMiddleware",
    "pairsmith.middleware.NoStoreHtmlMiddleware",
    # Last, as django-axes asks: it turns a login refused for a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "pairsmith.urls"
WSGI_APPLICATION = "pairsmith.wsgi.application"

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

# Database: DATABASE_URL (postgres://user:pass@host:port/name), default an SQLite file under var/.
_database_url = os.environ.get("DATABASE_URL", "").strip()
if _database_url:
    try:
        _database = dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj_database_url raises ValueError, KeyError or its own errors
        raise ImproperlyConfigured(
            f"DATABASE_URL is malformed ({exc}); expected postgres://USER@HOST:PORT/NAME"
        ) from exc
    if not _database.get("ENGINE"):
        raise ImproperlyConfigured(
            "DATABASE_URL names no known database engine; expected postgres://USER@HOST:PORT/NAME"
        )
    if _database["ENGINE"] == "django.db.backends.postgresql" and not _database.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL has no database name; expected postgres://USER@HOST:PORT/NAME")
    if _database["ENGINE"] == "django.db.backends.postgresql":
        # No JIT: the pages' few large queries (counts per status over a million rows) spent about 0.5 s compiling
        # and won nothing back; what this app runs is short and planned well without it.
        _options = _database.setdefault("OPTIONS", {})
        _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "pairsmith.sqlite3",
        # WAL lets the web server read while an inline job writes.
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 20},
        # A file, not memory, so that a celery worker process in the tests can open the same test database.
        "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
    }
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes' backend first: it refuses a locked-out login before any password is checked. It subclasses ModelBackend,
# so sessions made by force_login (tests) and benchmarks/common.py, which name the first backend, keep working.
# Django's test Client.login() passes no request, which axes refuses: use force_login, or pass
# request=HttpRequest() to client.login().
AUTHENTICATION_BACKENDS = ["axes.backends.AxesBackend", "django.contrib.auth.backends.ModelBackend"]

# Login throttling (django-axes). Failed logins are counted per username (from any address) and, separately, per
# client address (for any username); either reaching the limit within the cool-off locks that account or address
# out, and the login page answers 429 with registration/lockout.html. A successful login clears that user's own
# failures. Attempts during a lockout do not extend it, so the page can say when to try again.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", 10))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES", 15)))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_VERBOSE = False  # no start-up banner in every management command's output
# Axes' own reset on success deletes every failure matching the user *or the address*: someone with an account could
# then log in between guesses at another account from the same address and clear that account's count. This handler
# clears only the failures against the user who logged in.
AXES_HANDLER = "annotate.audit.LoginAttemptHandler"

# Behind a reverse proxy every request comes from the proxy's address, so the per-address count would lock everyone
# out at once. PROXY_CLIENT_IP_HEADER names the header the proxy sets to the client's address (X-Real-IP, or
# X-Forwarded-For, of which the last entry is used: the one a single proxy appends). It is read only in production
# and only when set, because a client can send any header: trust it only behind a proxy that overwrites it.
PROXY_CLIENT_IP_HEADER = "" if DEBUG else os.environ.get("PROXY_CLIENT_IP_HEADER", "").strip()


def client_ip(request) -> str | None:
    """The client's address for login throttling: the proxy's header when configured and valid, else REMOTE_ADDR."""
    from django.conf import settings

    header = settings.PROXY_CLIENT_IP_HEADER
    if header:
        value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "").split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass  # missing or malformed: fall back to the connection's address
    return request.META.get("REMOTE_ADDR")


AXES_CLIENT_IP_CALLABLE = client_ip

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
if DEBUG:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise serves from the finders, but wants the folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

EXPORT_ROOT = Path(os.environ.get("EXPORT_ROOT", VAR_DIR / "exports"))

# Object storage (README "Several web nodes and workers"). STORAGE_URL=s3://BUCKET/PREFIX keeps uploads and export
# files in an S3-compatible store (AWS S3, MinIO, Ceph, GCS in S3 mode) through django-storages, so that web and worker
# nodes share nothing but PostgreSQL, Redis and the store; credentials, endpoint and region come from the AWS_*
# variables. Unset: local folders (EXPORT_ROOT, VAR_DIR/imports). pairsmith/filestore.py is the one module that knows.
STORAGE_URL = os.environ.get("STORAGE_URL", "").strip()
STORAGE_BUCKET = STORAGE_PREFIX = ""
if STORAGE_URL:
    if not STORAGE_URL.startswith("s3://") or not STORAGE_URL[5:].split("/", 1)[0]:
        raise ImproperlyConfigured(f"STORAGE_URL={STORAGE_URL!r} is not s3://BUCKET/PREFIX (the prefix may be empty).")
    STORAGE_BUCKET, _, STORAGE_PREFIX = STORAGE_URL[5:].partition("/")
    STORAGE_PREFIX = STORAGE_PREFIX.strip("/")
AWS_S3_ENDPOINT_URL = os.environ.get("AWS_S3_ENDPOINT_URL", "").strip() or None
AWS_S3_REGION_NAME = os.environ.get("AWS_DEFAULT_REGION", "").strip() or None
# Downloads stream through the web node; on, they redirect to a presigned URL of the store valid this many seconds.
STORAGE_PRESIGNED_DOWNLOADS = env_bool("STORAGE_PRESIGNED_DOWNLOADS", False)
STORAGE_PRESIGNED_SECONDS = env_count("STORAGE_PRESIGNED_SECONDS", 300) or 300
# Scratch space of this node only (an export's files before they go to the store, a cached upload): never shared.
SCRATCH_DIR = Path(os.environ.get("SCRATCH_DIR", VAR_DIR / "scratch"))


# A store that is down fails a request within seconds, not minutes: a few attempts, short connect timeouts.
STORAGE_CONNECT_TIMEOUT = float(os.environ.get("STORAGE_CONNECT_TIMEOUT", 5))
STORAGE_CLIENT_CONFIG = None
if STORAGE_URL:
    from botocore.config import Config as _BotoConfig

    STORAGE_CLIENT_CONFIG = _BotoConfig(
        connect_timeout=STORAGE_CONNECT_TIMEOUT, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
    )


def storage_options(area: str) -> dict:
    """The STORAGES entry of `area` ("exports" or "imports"): a folder, or a prefix of the bucket."""
    if not STORAGE_URL:
        location = EXPORT_ROOT if area == "exports" else VAR_DIR / "imports"
        return {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": location}}
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": STORAGE_BUCKET,
            "location": "/".join(part for part in (STORAGE_PREFIX, area) if part),
            "endpoint_url": AWS_S3_ENDPOINT_URL,
            "region_name": AWS_S3_REGION_NAME,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_expire": STORAGE_PRESIGNED_SECONDS,
            "client_config": STORAGE_CLIENT_CONFIG,
        },
    }


STORAGES["exports"] = storage_options("exports")
STORAGES["imports"] = storage_options("imports")

# Uploads: imports read the file from disk in a stream, so memory stays bounded whatever its size.
MAX_IMPORT_BYTES = int(os.environ.get("MAX_IMPORT_BYTES", 2 * 1024**3))
MAX_IMPORT_ROWS = int(os.environ.get("MAX_IMPORT_ROWS", 2_000_000))
# Uploads waiting for a lead's go-ahead, per user across sessions (deleted after 24 h if nobody imports them).
IMPORT_PENDING_MAX_UPLOADS = int(os.environ.get("IMPORT_PENDING_MAX_UPLOADS", 5))
IMPORT_PENDING_MAX_BYTES = int(os.environ.get("IMPORT_PENDING_MAX_BYTES", 2 * MAX_IMPORT_BYTES))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2

# A task's JSON Schema and the completions checked against it (annotate/schemas.py says why each limit is there).
JSON_SCHEMA_MAX_BYTES = int(os.environ.get("JSON_SCHEMA_MAX_BYTES", 64 * 1024))
JSON_SCHEMA_MAX_DEPTH = int(os.environ.get("JSON_SCHEMA_MAX_DEPTH", 64))
JSON_SCHEMA_MAX_SUBSCHEMAS = int(os.environ.get("JSON_SCHEMA_MAX_SUBSCHEMAS", 1_000))
JSON_SCHEMA_MAX_STEPS = int(os.environ.get("JSON_SCHEMA_MAX_STEPS", 200_000))
JSON_SCHEMA_MAX_ERRORS = int(os.environ.get("JSON_SCHEMA_MAX_ERRORS", 100))
JSON_DOCUMENT_MAX_CHARS = int(os.environ.get("JSON_DOCUMENT_MAX_CHARS", 100_000))
JSON_DOCUMENT_MAX_DEPTH = int(os.environ.get("JSON_DOCUMENT_MAX_DEPTH", 64))

# Output a template can make (annotate/rendering.py holds the same defaults): text and placeholders per template text,
# and bytes of one rendered record (its JSON line), for the template preview and for exports.
MAX_TEMPLATE_CHARS = int(os.environ.get("MAX_TEMPLATE_CHARS", 20_000))
MAX_TEMPLATE_PLACEHOLDERS = int(os.environ.get("MAX_TEMPLATE_PLACEHOLDERS", 20))
MAX_RENDERED_RECORD_BYTES = int(os.environ.get("MAX_RENDERED_RECORD_BYTES", 1024**2))

# Model in the loop (README "Model in the loop"): one OpenAI-compatible endpoint, named here and never in the UI, so
# that no request goes to an address a user typed. LLM_BASE_URL unset: the model features are off and say so.
LLM_BASE_URL = os.environ.get("LLM_BASE_URL", "").strip().rstrip("/")
if LLM_BASE_URL and not LLM_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"LLM_BASE_URL={LLM_BASE_URL!r} is not an http(s) URL; e.g. http://127.0.0.1:8080/v1")
LLM_API_KEY = os.environ.get("LLM_API_KEY", "")
LLM_MODEL = os.environ.get("LLM_MODEL", "").strip()
LLM_TIMEOUT = float(os.environ.get("LLM_TIMEOUT", 60))
LLM_MAX_RETRIES = int(os.environ.get("LLM_MAX_RETRIES", 3))
LLM_RETRY_BACKOFF = float(os.environ.get("LLM_RETRY_BACKOFF", 1.0))
LLM_CONCURRENCY = int(os.environ.get("LLM_CONCURRENCY", 8))
LLM_MAX_RESPONSE_BYTES = int(os.environ.get("LLM_MAX_RESPONSE_BYTES", 1024**2))
LLM_MAX_TOKENS = int(os.environ.get("LLM_MAX_TOKENS", 2048))

# Celery: with REDIS_URL a real broker; without it tasks run inline in the web process (development only).
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True
# The queue web nodes send jobs to and workers consume (celery's own default unless set): one per deployment sharing
# a Redis.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "").strip() or "celery"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request must not hang when Redis is down: fail fast, the job row stays queued and the sweep re-sends it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "socket_timeout": 2}
CELERY_RESULT_EXPIRES = 3600

# The cache holds the per-user rate limits (pairsmith/ratelimit.py). With REDIS_URL it is that Redis, shared by every
# web node, with short timeouts: when Redis is down, the limits are skipped and requests go on. Without it each process
# keeps its own counts in memory (development).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pairsmith",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "pairsmith"}}

# Writes a person may make per minute (0: no limit); see README "Configuration". An annotator autosaving every 2 s
# makes 30; someone reviewing as fast as they read, a few.
RATE_LIMIT_WRITES = env_count("RATE_LIMIT_WRITES", 120)
RATE_LIMIT_FEEDBACK = env_count("RATE_LIMIT_FEEDBACK", 300)
RATE_LIMIT_JOBS = env_count("RATE_LIMIT_JOBS", 30)
RATE_LIMIT_API = env_count("RATE_LIMIT_API", 600)

# Security. Production (DEBUG off) turns on every protection `check --deploy` asks for.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # no script reads the cookie: templates hand the token to htmx in hx-headers
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SILENCED_SYSTEM_CHECKS: list[str] = []

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_without_traceback": {"()": "pairsmith.logfilters.ClientErrorsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own default config gives the "django" logger a console handler too: every record would be printed
        # twice (there and through the root). One handler, the root's.
        "django": {"handlers": [], "level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": True},
        "django.request": {"filters": ["client_errors_without_traceback"]},
        "django.db.backends": {"level": "INFO"},
        "httpx2": {"level": "WARNING"},  # one INFO line per model request would drown a drafts run's log
    },
}
