"""Settings for the platform, read from the environment.

Every variable has a safe local default (the embedded mode: SQLite, in-memory
channel layer, ORM broker); production values are given through the
environment and fail fast where a default would be unsafe.
"""

from datetime import timedelta
from importlib import import_module
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.security_headers import CONTENT_SECURITY_POLICY, PERMISSIONS_POLICY_DISABLED  # noqa: F401
from core.storage import storage_settings

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Local state of the embedded mode (SQLite file, secret key, static files, upload spill); core's
# AppConfig.ready() creates the folders.
VAR_DIR = Path(env.str("PLATFORM_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

# The key signs sessions, password-reset links and django-q2's task payloads (which the
# workers unpickle), so a known key is a shell on every worker.
PUBLIC_DEVELOPMENT_KEY = "insecure-local-development-key-do-not-use-in-production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if SECRET_KEY == PUBLIC_DEVELOPMENT_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is the public development key; set a random key of your own "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false.")
    if env.str("REDIS_URL", default=""):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when REDIS_URL is set: every web and worker host "
            "of a deployment must share the same key."
        )
    from core.secret_key import generated_secret_key

    SECRET_KEY = generated_secret_key(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # First of the platform's apps, so that its `qcluster` command (the platform's worker cluster, with
    # clean stops, an instance heartbeat and the recovery loop) is the one `manage.py qcluster` runs.
    "core",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "django_htmx",
    "template_partials",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.mfa",
]
# The platform's own apps: their tasks.py functions are the only tasks a worker runs (core.schedules).
PLATFORM_APPS = ["core", "accounts", "trades", "scripts_runner", "etl", "analyzer", "backtest"]
INSTALLED_APPS += [app for app in PLATFORM_APPS if app not in INSTALLED_APPS]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost after SecurityMiddleware, so every response (error pages, static files) has them.
    "core.headers.ContentSecurityPolicyMiddleware",
    "core.headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.StaffTwoFactorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "core.context_processors.platform",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool("DATABASE_POOL", default=False):
    # Under ASGI every request would open (and PostgreSQL fork) a connection; a pool per process keeps a few
    # open. Persistent connections (DATABASE_CONN_MAX_AGE) are the other way, and cannot be combined with it.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": env.int("DATABASE_POOL_SIZE", default=4), "timeout": 10}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; IMMEDIATE takes the
    # write lock at BEGIN so two writers queue on the busy timeout instead of
    # failing with "database is locked" half-way through a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- redis: channel layer, broker, cache --------------------------------------
# A password in the URL (`redis://:secret@host:6379/0` or `redis://user:secret@host:6379/0`, ACL user) is
# used by all three; error reports hide the URL (core.reporting.SettingsFilter).
REDIS_URL = env.str("REDIS_URL", default="")
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.reporting.SettingsFilter"
# The cluster (= queue) name also namespaces the cache and channel-layer keys, so
# deployments (and parallel test runs, config.settings_test) can share one Redis without
# taking or wiping each other's data.
Q_CLUSTER_NAME = env.str("Q_CLUSTER_NAME", default="platform")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 times out idle socket reads after 5 s by default,
            # which would drop every quiet websocket consumer.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": f"asgi-{Q_CLUSTER_NAME}",
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": Q_CLUSTER_NAME,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- background jobs (django-q2) ----------------------------------------------
JOB_TIMEOUT = env.int("JOB_TIMEOUT", default=2 * 3600)
JOB_HEARTBEAT_STALE_SECONDS = env.int("JOB_HEARTBEAT_STALE_SECONDS", default=60)
# The id of this worker cluster instance; empty: host name and process id of the cluster's main process.
# Jobs record it when they start, its heartbeat and held-task list are keyed by it.
WORKER_ID = env.str("WORKER_ID", default="")
# A worker cluster whose heartbeat is older than this is dead: its running jobs are lost, its held tasks
# are handed back to the queue. Also the grace before a queued job whose task is nowhere counts as lost.
WORKER_STALE_SECONDS = env.int("WORKER_STALE_SECONDS", default=30)
# How often every worker host's recovery loop runs (one host acts at a time).
RECOVERY_INTERVAL_SECONDS = env.float("RECOVERY_INTERVAL_SECONDS", default=5.0)
# How long a stopping worker cluster lets running job bodies wind down before it kills them.
WORKER_STOP_SECONDS = env.float("WORKER_STOP_SECONDS", default=6.0)
Q_CLUSTER = {
    "name": Q_CLUSTER_NAME,
    "workers": env.int("Q_WORKERS", default=4),
    "recycle": 200,
    # A task is never handed out twice: it is only retried after `retry`
    # seconds, which exceeds the hard timeout, and only one attempt is made.
    "timeout": JOB_TIMEOUT,
    "retry": JOB_TIMEOUT + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Background tasks",
    "poll": 0.1,
    # Workers may start child processes (a backtest sweep's pool); every job that does so
    # tears its children down itself and they die with their parent.
    "daemonize_workers": False,
}
# A queue of its own within the same cluster name (the name also keys task
# signing); the tests give their server/worker processes one.
if env.str("Q_QUEUE_NAME", default=""):
    Q_CLUSTER["cluster_name"] = env.str("Q_QUEUE_NAME")
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    # The same brokers, refusing any task that is not a platform task (core.schedules).
    Q_CLUSTER["broker_class"] = "core.schedules.PlatformRedisBroker"
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "core.schedules.PlatformORMBroker"

# --- auth: allauth ------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "accounts.backends.StaffPermissionsBackend",
]
SITE_ID = 1
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
ACCOUNT_ALLOW_SIGNUP = env.bool("ACCOUNT_ALLOW_SIGNUP", default=False)
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# Addresses given when an account is created are taken as verified (accounts.services);
# an address added or changed later is unverified until root sets it or the user confirms
# it from the mail allauth sends. A password reset only goes to a verified address.
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_CONFIRMATION_HMAC = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    # allauth's own login throttle: per IP and per account key.
    "login_failed": env.str("LOGIN_FAILED_RATE_LIMIT", default="20/m/ip,5/5m/key"),
}
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
# Two-factor authentication (allauth mfa): TOTP apps and recovery codes. When
# PLATFORM_STAFF_REQUIRE_MFA is on, the Django admin refuses staff without an authenticator.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="Trading data platform")
PLATFORM_STAFF_REQUIRE_MFA = env.bool("PLATFORM_STAFF_REQUIRE_MFA", default=False)
GOOGLE_CLIENT_ID = env.str("GOOGLE_CLIENT_ID", default="")
GOOGLE_CLIENT_SECRET = env.str("GOOGLE_CLIENT_SECRET", default="")
SOCIALACCOUNT_PROVIDERS = {}
if GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET:
    SOCIALACCOUNT_PROVIDERS["google"] = {
        "APPS": [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}],
        "SCOPE": ["profile", "email"],
    }
EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- API ----------------------------------------------------------------------
# API tokens: django-rest-knox with the platform's own model (name, last use).
KNOX_TOKEN_MODEL = "accounts.ApiToken"
# knox's own AuthToken is swapped out; its migrations would only create an unused table.
MIGRATION_MODULES = {"knox": None}
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=30)
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=365)
API_TOKEN_LAST_USED_SECONDS = env.int("API_TOKEN_LAST_USED_SECONDS", default=60)
if not 1 <= API_TOKEN_DEFAULT_DAYS <= API_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured("API_TOKEN_DEFAULT_DAYS must be between 1 and API_TOKEN_MAX_DAYS.")
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_DEFAULT_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 50,
}
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=64)
SPECTACULAR_SETTINGS = {
    "TITLE": "Trading data platform API",
    "DESCRIPTION": "Trade exports, script runs, ETL, CSV analysis and backtests.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- i18n / time --------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- the apps' own settings ------------------------------------------------------
# Each app declares its settings in its conf.py (core.appconf); they are read from the environment
# here, once, as `<APP>_<NAME>` (TRADES_EXPORT_CONCURRENCY, ETL_MAX_FILE_BYTES, ...).
APP_SETTINGS = {}
for _app in ("trades", "scripts_runner", "etl", "analyzer", "backtest"):
    APP_SETTINGS.update(import_module(f"{_app}.conf").SETTINGS.from_environment(env, var_dir=VAR_DIR))
globals().update(APP_SETTINGS)

# --- files --------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
NODE_MODULES = BASE_DIR / "node_modules"
# Front-end packages come from the npm registry (package-lock.json) and are
# served from their dist folders; nothing third-party is committed.
_VENDOR = {
    "htmx": NODE_MODULES / "htmx.org" / "dist",
    "htmx-ext-ws": NODE_MODULES / "htmx-ext-ws" / "dist",
    "pico": NODE_MODULES / "@picocss" / "pico" / "css",
    "vega": NODE_MODULES / "vega" / "build",
    "vega-lite": NODE_MODULES / "vega-lite" / "build",
    "vega-embed": NODE_MODULES / "vega-embed" / "build",
}
STATICFILES_DIRS = [BASE_DIR / "static"] + [(f"vendor/{name}", path) for name, path in _VENDOR.items() if path.exists()]
# Where stored files live (README "Storage"): file:///absolute/folder for local disk (the default, under
# var/media; PLATFORM_MEDIA_ROOT still names that folder), or s3://bucket/prefix?endpoint_url=…&region=…
# for an S3-compatible store, credentials from the standard AWS_* variables. Every host of a deployment
# uses the same value.
_DEFAULT_STORAGE, _LOCAL_MEDIA = storage_settings(
    env.str("PLATFORM_STORAGE_URL", default="")
    or Path(env.str("PLATFORM_MEDIA_ROOT", default=str(VAR_DIR / "media"))).resolve().as_uri()
)
MEDIA_ROOT = Path(_LOCAL_MEDIA or VAR_DIR / "media")
MEDIA_URL = "/media/"
# Work that needs a local file (DuckDB, parsing) reads a copy cached on this host, evicted by size.
PLATFORM_FILE_CACHE_DIR = Path(env.str("PLATFORM_FILE_CACHE_DIR", default=str(VAR_DIR / "cache" / "files")))
PLATFORM_FILE_CACHE_MAX_BYTES = env.int("PLATFORM_FILE_CACHE_MAX_BYTES", default=5 * 1024**3)
STORAGES = {
    "default": _DEFAULT_STORAGE,
    "staticfiles": {
        # collectstatic (`make run`) writes every file under a name holding its content hash, gzipped
        # beside it, and a manifest; pages link the hashed names, which browsers may cache for good.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # larger uploads stream to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024  # also the largest JSON body of the API (core.parsers)
# The largest request body the server reads at all (core.asgi_handler): the analyzer's upload
# limit plus room for the multipart envelope. Each route applies its own, smaller limit below it.
REQUEST_MAX_BODY_BYTES = env.int(
    "REQUEST_MAX_BODY_BYTES", default=APP_SETTINGS["ANALYZER_MAX_UPLOAD_BYTES"] + 1024**2
)
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "tmp")

# --- security (checked by `manage.py check --deploy`) ---------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe liveness over plain HTTP
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy and Permissions-Policy: config/security_headers.py (imported above).

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}
