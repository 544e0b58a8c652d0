"""Settings for PACSshare, all read from the environment.

Every value has an embedded default that runs the app on one machine with no
services: SQLite under var/, tasks in-process after commit, mail and SMS written
to var/outbox/. Production sets DEBUG=0 and the URLs of the real services.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
# A development-only default; production must set SECRET_KEY (checked below).
SECRET_KEY = env.str(
    "SECRET_KEY",
    default="dev-insecure-0c1d2e3f4a5b6c7d8e9f-pacsshare-do-not-use-in-production",
)
if not DEBUG and "insecure" in SECRET_KEY:
    raise environ.ImproperlyConfigured("Set SECRET_KEY when DEBUG is off.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    # django.contrib.admin, with PACSshare's admin site (pacsshare/admin_site.py)
    "pacsshare.apps.PacsAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "formtools",
    "django_otp",
    "csp",
    "axes",
    "recipients",
    "studies",
    "sharing",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A NUL in the query string is refused before any view can query with it.
    "pacsshare.middleware.RefuseNullCharactersMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "pacsshare.middleware.SessionTimeoutMiddleware",
    "pacsshare.middleware.NoStoreMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a lockout into its 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "pacsshare.urls"
WSGI_APPLICATION = "pacsshare.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'pacsshare.sqlite3'}"
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# A persistent connection the server dropped (restart, failover, idle timeout) is
# replaced before a request uses it, instead of costing that request a 500.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE: a writing transaction takes the lock when it begins, so two
    # imports wait for each other instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        # A fresh clone has no var/ yet; SQLite will not create the folder.
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
elif "postgresql" in DATABASES["default"]["ENGINE"]:
    # The planner's default random_page_cost (4) models spinning disks: for a
    # page of 50 rows by id it then scans whole tables and hashes them (measured
    # on Status Forwarding: 1.6 ms where index lookups take 0.3 ms). 1.1 is the
    # usual value for SSDs with the hot rows in memory. PG_RANDOM_PAGE_COST
    # sets another; empty leaves the server's own.
    random_page_cost = env.str("PG_RANDOM_PAGE_COST", default="1.1")
    if random_page_cost:
        options = DATABASES["default"].setdefault("OPTIONS", {})
        setting = f"-c random_page_cost={float(random_page_cost)}"
        options["options"] = f"{options.get('options', '')} {setting}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "recipients.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
AUTHENTICATION_BACKENDS = [
    # django-axes first: refuses locked-out logins before ModelBackend checks them.
    "pacsshare.auth_backends.ThrottlingBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studies:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("nl", "Nederlands"),
    ("fr", "Français"),
    ("de", "Deutsch"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["pacsshare.formats"]
TIME_ZONE = "Europe/Brussels"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# OHIF's prebuilt viewer (`make ohif`), served at /ohif/ (studies/ohif.py).
OHIF_DIST = env.path("OHIF_DIST", default=str(VAR_DIR / "ohif"))
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# collectstatic fills STATIC_ROOT; before it has run (a fresh clone, the tests)
# whitenoise would warn on every request that the folder is missing.
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "media/"  # never served publicly: files reach users through views
OUTBOX_DIR = env.path("OUTBOX_DIR", default=str(VAR_DIR / "outbox"))
RENDER_CACHE_DIR = env.path("RENDER_CACHE_DIR", default=str(VAR_DIR / "render-cache"))
# Hostile DICOM (studies/dicom_import.py, studies/rendering.py): beyond these a
# file is refused at import and rendered as the placeholder, never allocated.
DICOM_MAX_FRAMES = env.int("DICOM_MAX_FRAMES", default=100_000)
DICOM_MAX_FRAME_PIXELS = env.int("DICOM_MAX_FRAME_PIXELS", default=64 * 1024 * 1024)
DICOM_MAX_PIXEL_BYTES = env.int("DICOM_MAX_PIXEL_BYTES", default=4 * 1024**3)
DICOM_MAX_INFLATED_BYTES = env.int("DICOM_MAX_INFLATED_BYTES", default=256 * 1024**2)
# The DICOM receiver (manage.py dicom_listen, studies/dicomnet/receiver.py).
DICOM_RECEIVER_AE_TITLE = env.str("DICOM_RECEIVER_AE_TITLE", default="PACSSHARE")
DICOM_RECEIVER_HOST = env.str("DICOM_RECEIVER_HOST", default="127.0.0.1")
DICOM_RECEIVER_PORT = env.int("DICOM_RECEIVER_PORT", default=11112)
# Studies per page of the overview, recipients per page of Status Forwarding (the
# benchmark serves 50 of each).
OVERVIEW_PAGE_SIZE = env.int("OVERVIEW_PAGE_SIZE", default=25)
STATUS_PAGE_SIZE = env.int("STATUS_PAGE_SIZE", default=25)

# The department's DICOMweb source (studies/dicomnet/source.py): seconds to
# connect and to wait for an answer, and how many studies a search shows.
DICOMWEB_CONNECT_TIMEOUT = env.float("DICOMWEB_CONNECT_TIMEOUT", default=5.0)
DICOMWEB_TIMEOUT = env.float("DICOMWEB_TIMEOUT", default=30.0)
DICOMWEB_SEARCH_LIMIT = env.int("DICOMWEB_SEARCH_LIMIT", default=50)
# "Send to my PACS" (studies/dicomnet/store_scu.py): seconds to connect, and
# to wait for the PACS to answer an association or a C-STORE.
DICOM_STORE_CONNECT_TIMEOUT = env.float("DICOM_STORE_CONNECT_TIMEOUT", default=10.0)
DICOM_STORE_TIMEOUT = env.float("DICOM_STORE_TIMEOUT", default=60.0)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Mail: SMTP from EMAIL_URL in production; the local outbox otherwise.
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(Path(OUTBOX_DIR) / "mail")
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="PACSshare <noreply@pacsshare.local>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=30.0)

# SMS: a backend shaped like Django's mail backends (pacsshare.sms).
SMS_BACKEND = env.str(
    "SMS_BACKEND", default="pacsshare.sms.backends.filebased.SmsBackend"
)
SMS_FILE_PATH = str(Path(OUTBOX_DIR) / "sms")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM = env.str("TWILIO_FROM", default="")
# Dotted path of a twilio.http.HttpClient subclass; empty: twilio's own.
TWILIO_HTTP_CLIENT = env.str("TWILIO_HTTP_CLIENT", default="")
TWILIO_TIMEOUT = env.float("TWILIO_TIMEOUT", default=30.0)

# Celery: Redis when REDIS_URL is set; otherwise tasks run in-process (the
# callers enqueue with transaction.on_commit, so "in-process" means "after commit").
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
# Celery's Django fix-up closes the database connection around every task unless
# this is set: a new PostgreSQL backend per mail (fork, authentication, cold
# caches) cost more than the mail. The worker keeps it for this many tasks, or
# less by Django's own rules (pacsshare/celery.py).
CELERY_DB_REUSE_MAX = 1000
CELERY_ACCEPT_CONTENT = ["json"]
# Longer than any countdown or retry delay used by the tasks (at most 1 hour).
# The socket timeouts keep a request that queues a task from hanging on a broker
# that does not answer: the row stays pending and the relay sends it later.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 2 * 3600,
    "socket_connect_timeout": 3,
    "socket_timeout": 5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Notification retries: exponential backoff from BASE seconds, capped at MAX (well
# under the visibility timeout above), with jitter; then the row is marked failed.
NOTIFICATION_MAX_RETRIES = env.int("NOTIFICATION_MAX_RETRIES", default=5)
NOTIFICATION_RETRY_BASE = env.float("NOTIFICATION_RETRY_BASE", default=30.0)
NOTIFICATION_RETRY_MAX = env.float("NOTIFICATION_RETRY_MAX", default=600.0)
# A claimed row's lease, in seconds: longer than EMAIL_TIMEOUT and TWILIO_TIMEOUT
# together with rendering, so only a row whose worker died outlives it.
NOTIFICATION_LEASE = env.float("NOTIFICATION_LEASE", default=120.0)
# The relay (Celery beat, or `manage.py relay_notifications`) runs every PERIOD
# seconds and re-queues pending rows older than MIN_AGE and expired leases.
NOTIFICATION_RELAY_PERIOD = env.float("NOTIFICATION_RELAY_PERIOD", default=30.0)
NOTIFICATION_RELAY_MIN_AGE = env.float("NOTIFICATION_RELAY_MIN_AGE", default=10.0)
# "Bring in" and "Send to my PACS" (studies/dicomnet/leases.py): a claimed row's
# lease in seconds, renewed at every object, so longer than one object's worst
# case (DICOMWEB_TIMEOUT, or DICOM_STORE_TIMEOUT with its connection, and the
# import); a row past it was interrupted (its worker died). The relay re-queues
# such rows every DICOM_RELAY_PERIOD seconds, up to DICOM_TASK_MAX_ATTEMPTS
# claims in all; then the row fails with the reason.
DICOM_TASK_LEASE = env.float("DICOM_TASK_LEASE", default=300.0)
DICOM_TASK_MAX_ATTEMPTS = env.int("DICOM_TASK_MAX_ATTEMPTS", default=3)
DICOM_RELAY_PERIOD = env.float("DICOM_RELAY_PERIOD", default=60.0)
CELERY_BEAT_SCHEDULE = {
    "relay-notifications": {
        "task": "sharing.relay_notifications",
        "schedule": NOTIFICATION_RELAY_PERIOD,
        # A sweep that could not run in time is replaced by the next one.
        "options": {"expires": NOTIFICATION_RELAY_PERIOD},
    },
    "relay-dicomweb-imports": {
        "task": "studies.relay_dicomweb_imports",
        "schedule": DICOM_RELAY_PERIOD,
        "options": {"expires": DICOM_RELAY_PERIOD},
    },
    "relay-pacs-transfers": {
        "task": "sharing.relay_pacs_transfers",
        "schedule": DICOM_RELAY_PERIOD,
        "options": {"expires": DICOM_RELAY_PERIOD},
    },
}
CELERY_TIMEZONE = TIME_ZONE

CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Link and SMS-code guessing (sharing/access/throttle.py, django-ratelimit on the
# default cache, so the limit holds across workers with Redis): attempts per
# client address and, as well, per session, e.g. "30/m" or "100/h".
ACCESS_LINK_RATE = env.str("ACCESS_LINK_RATE", default="30/m")
ACCESS_CODE_RATE = env.str("ACCESS_CODE_RATE", default="10/m")
RATELIMIT_USE_CACHE = "default"

SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Seconds; enforced by pacsshare.middleware.SessionTimeoutMiddleware.
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
SESSION_ABSOLUTE_TIMEOUT = env.int("SESSION_ABSOLUTE_TIMEOUT", default=12 * 3600)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# How many reverse proxies in front of the app append to X-Forwarded-For; 0 means
# the client's address is REMOTE_ADDR (audit log and login throttling).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Content Security Policy (django-csp 4): no inline script or style anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
}

# Login throttling (django-axes): 5 failures for one username from one address
# lock that pair out for 15 minutes; failures are audited (sharing.audit.record).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "sharing.audit.record.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "filters": {
        "redact_link_tokens": {"()": "sharing.access.log_filters.RedactLinkTokens"}
    },
    "loggers": {
        # The request line carries the URL; bucket links are /b/<token>/ once.
        "django.server": {"level": "WARNING", "filters": ["redact_link_tokens"]},
        "django.request": {"filters": ["redact_link_tokens"]},
        # Its debug lines carry query strings (patient names, IDs).
        "dicomweb_client": {"level": "WARNING"},
        # dicomweb-client's retry helper logs the failed URL, query string and all.
        "retrying": {"level": "ERROR"},
        # pynetdicom logs every association and message at INFO.
        "pynetdicom": {"level": env.str("PYNETDICOM_LOG_LEVEL", default="WARNING")},
    },
}

# The pytest suite sets this to fail, rather than skip, tests whose service is down.
PACSSHARE_REQUIRE_SERVICES = env.bool("PACSSHARE_REQUIRE_SERVICES", default=False)
