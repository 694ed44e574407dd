"""Settings, all read from the environment in this one place.

The defaults are for development on one machine: SQLite and the in-process channel layer.
`DATABASE_URL` and `REDIS_URL` switch to PostgreSQL and Redis, which is how the app scales
out to many server processes. Every variable is documented in the README.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Development is the default so that `make run` works from a fresh clone; the Docker image
# sets DEBUG=false, and a system check refuses a production start without real secrets.
DEBUG = env.bool("DEBUG", default=True)

# A key that is only ever used when DEBUG is on and SECRET_KEY is unset.
_DEVELOPMENT_SECRET_KEY = "insecure-development-key-never-used-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default="") or (_DEVELOPMENT_SECRET_KEY if DEBUG else "")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS. Production defaults are the strict ones `check --deploy` asks for; each can be
# relaxed from the environment (the compose example turns the redirect off so that a trial
# on http://localhost works). Behind a TLS proxy, TRUST_X_FORWARDED_PROTO=true makes Django
# believe the proxy's X-Forwarded-Proto: the proxy must then set (never pass through) it.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes speak plain HTTP to the container itself: a redirect to https would fail them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Browsers keep Secure cookies on http://localhost too, so these stay on for a local trial.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)

INSTALLED_APPS = [
    # daphne first: its runserver replaces Django's with an ASGI one.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "django_htmx",
    "template_partials",
    "tailwind",
    "theme",
    "inbox",
    # Django's Tasks API (the backport until Django 6.0) and its database queue: replies'
    # delivery jobs are rows written in the reply's own transaction (README, "Replies").
    "django_tasks",
    "django_tasks_db",
    # `manage.py seed` and `simulate`; see devtools/apps.py for why not only under DEBUG.
    "devtools",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise, which answers static files before them: those stay cacheable.
    "inbox.headers.ContentSecurityPolicyMiddleware",
    "inbox.headers.PrivateResponseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "inbox.middleware.AgentTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # The product's 404 and 500 pages under DEBUG too (README, "The inbox").
    "inbox.error_pages.ProductErrorPagesMiddleware",
    # Last, as django-axes asks: it turns a lockout into its answer (the lockout page).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "inbox.headers.csp_nonce",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "project.asgi.application"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Parallel webhooks must never see "database is locked": WAL lets readers run beside
    # the writer, IMMEDIATE takes the write lock at BEGIN (so a transaction never has to
    # upgrade a read lock and deadlock), and the timeout makes writers queue instead of fail.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.float("SQLITE_BUSY_TIMEOUT", default=20.0),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests run threads against the database, which an in-memory SQLite cannot share.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
else:
    # Under ASGI each request runs its ORM work in a thread of its own, so a persistent
    # connection (CONN_MAX_AGE > 0) is never reused: they pile up until PostgreSQL refuses
    # new clients (`make bench` saw 98 of 100 taken, then 503s). A pool shares a few
    # connections between those threads, and spares each request a new connection.
    pool_size = env.int("DATABASE_POOL_SIZE", default=10)
    connect_timeout = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    DATABASES["default"]["OPTIONS"] = {
        # An unreachable server must fail a request (and /readyz) quickly, not hang it.
        "connect_timeout": connect_timeout,
    }
    if pool_size:
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            # How long a request waits for a pooled connection. During an outage the pool
            # has none to give, whatever connect_timeout says: this is then the webhook's
            # time to its 503, so the same bound (README, "Probes and the live layer").
            "timeout": connect_timeout,
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis with connections fit for its blocking receive (see the module).
            "BACKEND": "inbox.channel_layer.InboxChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="inbox"),
                # Per process; busy callers queue for one (README, "Probes and the live layer").
                "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=200),
                # A membership whose discard was lost (a crash, a Redis restart) is dropped
                # after 5 minutes, not 24 h; open sockets renew theirs (inbox/consumers.py).
                "group_expiry": 300,
                # Messages waiting per socket before channels-redis drops the next. A burst
                # is coalesced into one message per group per tick (inbox/live/publish.py),
                # so the default holds seconds of a loaded process's backlog; a socket that
                # lost one anyway is told to refetch (inbox/consumers.py).
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=100),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Content-Security-Policy (django-csp), the same in development as in production so that
# what breaks under it breaks on a developer's machine first. Scripts only from this origin
# and with the request's nonce; no inline style (htmx is told not to inject its own, see
# templates/_base.html); the page's socket origins are added per request (inbox/headers.py).
# README: "Headers and content security policy".
# The environment's CSP_REPORT_URI is not kept under that name: django-csp refuses a
# setting of it as one of its pre-4.0 settings.
_csp_report_uri = env.str("CSP_REPORT_URI", default="")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "connect-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if _csp_report_uri:
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = _csp_report_uri

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (django-axes), on every form that authenticates: /accounts/login/ and
# /admin/login/. LOGIN_FAILURE_LIMIT failures in a row for one username from one address
# lock that username out from that address for LOGIN_LOCKOUT_MINUTES (429 and a page that
# says so); other accounts from the address, and the account from elsewhere, still log in.
# A success resets the count. README: Security, "Logins".
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "inbox.lockout.lockout_response"
# Only the failures are recorded (what the lockout counts), not a row per successful login.
AXES_DISABLE_ACCESS_LOG = True
# Log lines name the locked-out parameters only, and no start-up banner on every command.
AXES_VERBOSE = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# The compiled stylesheet lives in the theme app (theme/static/css/dist/styles.css) and is
# committed, so serving needs no Node; `make css` rebuilds it from theme/static_src.
TAILWIND_APP_NAME = "theme"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production serves what collectstatic wrote: hashed names (cached forever) and
    # pre-compressed copies. Development and tests serve the sources through the finders.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# The webhook.
WEBHOOK_SECRET = env.str("WEBHOOK_SECRET", default="")
WEBHOOK_TIMEZONE = env.str("WEBHOOK_TIMEZONE", default="UTC")
WEBHOOK_MAX_BYTES = env.int("WEBHOOK_MAX_BYTES", default=1024 * 1024)
# Seconds an event may wait for its conversation before operators are warned about it.
WEBHOOK_REORDER_WINDOW = env.int("WEBHOOK_REORDER_WINDOW", default=600)

# Replies (README, "Replies"): where the delivery task posts SEND_MESSAGE; empty turns
# replies off (the composer says so and message_reply refuses).
PROVIDER_URL = env.str("PROVIDER_URL", default="")
# The HMAC-SHA256 key of X-Hub-Signature-256 on what we post; required with PROVIDER_URL
# when DEBUG is off (inbox.checks).
PROVIDER_SECRET = env.str("PROVIDER_SECRET", default="")
# Seconds one attempt may take (connect, write, read each).
PROVIDER_TIMEOUT = env.float("PROVIDER_TIMEOUT", default=10.0)
# Seconds from the reply's writing during which transient failures are retried.
PROVIDER_RETRY_FOR = env.float("PROVIDER_RETRY_FOR", default=24 * 3600.0)

TASKS = {
    "default": {
        # enqueue() inserts the job through the caller's connection, inside its transaction.
        "BACKEND": "django_tasks_db.DatabaseBackend",
    }
}
# Triage (README, "Triage"). The country a phone written without its +code is read in.
CONTACT_PHONE_REGION = env.str("CONTACT_PHONE_REGION", default="BR")
# Minutes a customer may wait for an answer before their row turns amber.
WAITING_WARN_MINUTES = env.int("WAITING_WARN_MINUTES", default=15)

# `manage.py serve`: how long SIGTERM waits for requests in flight and sockets to close.
# Under Docker's default 10 s stop grace period, so the drain ends before SIGKILL.
SHUTDOWN_TIMEOUT = env.float("SHUTDOWN_TIMEOUT", default=8.0)
# `manage.py serve`'s read timeouts (README, "Connections, limits and shutdown"): a request's
# headers must arrive within HTTP_HEADER_TIMEOUT seconds (an idle keep-alive connection is
# closed after as long), and after that grace a body must average HTTP_BODY_MIN_RATE bytes
# a second, so slow clients cannot hold connections (and file descriptors) open.
HTTP_HEADER_TIMEOUT = env.float("HTTP_HEADER_TIMEOUT", default=10.0)
HTTP_BODY_MIN_RATE = env.float("HTTP_BODY_MIN_RATE", default=1024.0)

# bin/start (`manage.py wait_for_services`): how long a starting container waits for
# PostgreSQL and Redis to answer before it gives up naming the one that does not.
STARTUP_WAIT_TIMEOUT = env.float("STARTUP_WAIT_TIMEOUT", default=60.0)

# Production logs are JSON lines on stdout, one object per record, for the log collector;
# development keeps plain text. LOG_FORMAT overrides either way.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "project.jsonlog.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every login at INFO; its failures and lockouts are WARNINGs.
    "loggers": {"django.request": {"level": "ERROR"}, "axes": {"level": "WARNING"}},
}
