"""Pedigree settings. Everything comes from the environment (see README, "Configuration")."""

from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_cache,
    env_choice,
    env_dirs,
    env_int,
    env_key32,
    env_list,
    env_rate,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("PEDIGREE_DATA_DIR") or BASE_DIR / "var").expanduser()
# The embedded default keeps its SQLite file and artefacts here; create it on a fresh clone.
DATA_DIR.mkdir(parents=True, exist_ok=True)

MODE = env_choice("PEDIGREE_MODE", "development", ("development", "production"))
PRODUCTION = MODE == "production"

_DEV_SECRET_KEY = "pedigree-development-only-key-never-use-in-production-0123456789abcdef"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", None if PRODUCTION else _DEV_SECRET_KEY)
if SECRET_KEY is None:
    raise ImproperlyConfigured("SECRET_KEY must be set when PEDIGREE_MODE=production.")
if PRODUCTION and (len(SECRET_KEY) < 50 or SECRET_KEY == _DEV_SECRET_KEY):
    raise ImproperlyConfigured("SECRET_KEY must be a unique value of at least 50 characters.")

DEBUG = env_bool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be false when PEDIGREE_MODE=production.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when PEDIGREE_MODE=production.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "registry.apps.PedigreeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "registry.apps.RegistryConfig",
    "lineage.apps.LineageConfig",
    "licensing.apps.LicensingConfig",
    "evaluators.apps.EvaluatorsConfig",
    "demo.apps.DemoConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "registry.api.errors.ApiErrorMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'pedigree.sqlite3'}"),
        # Persistent connections: opening one costs a request several milliseconds.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several web processes, their threads and in-process tasks share the file. WAL lets readers
    # run beside the one writer; IMMEDIATE makes each transaction take the write lock when it
    # begins, so a writer waits its turn (the busy timeout, in seconds) instead of failing with
    # "database is locked" when it upgrades a read lock that another writer blocks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=env_int("DATABASE_SQLITE_TIMEOUT", 30, minimum=1),
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
elif PREPARED_STATEMENTS:
    # Prepared statements: PostgreSQL stops planning a query afresh once a connection has run
    # it a few times, and the gate runs the same queries on every call. Turn them off behind
    # a pgbouncer in transaction mode.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=2
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The cache holds the API's rate-limit counters, so every web process must share it: Redis
# (CACHE_URL=redis://...) across machines; by default a folder under the data directory, shared
# by the processes of one machine without a write to the database on every request.
CACHES = {
    "default": env_cache(
        "CACHE_URL",
        DATA_DIR / "cache",
        key_prefix=env_str("PEDIGREE_CACHE_KEY_PREFIX", "pedigree") or "pedigree",
    )
}

# Content-Security-Policy on every answer (django-csp): scripts, styles, images and fonts only from
# this server, inline scripts and <style> only with the request's nonce (`request.csp_nonce`),
# style attributes not at all; no plugins, no framing, forms post only here.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        # Django's admin and Swagger UI draw their icons as data: SVGs.
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

AUTHENTICATION_BACKENDS = [
    # Refuses sign-ins from a locked-out username and address before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic target in production; in development WhiteNoise serves from the app folders.
STATIC_ROOT = DATA_DIR / "static" if PRODUCTION else None
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# Artefacts: clients may only name paths inside these roots. Uploads go to the "artefacts"
# storage: by default a folder, the first root (ARTEFACT_STORE); an S3 bucket lets web processes
# and workers on several machines share them.
ARTEFACT_ROOTS = env_dirs("PEDIGREE_ARTEFACT_ROOTS", [DATA_DIR / "artefacts"])
ARTEFACT_STORE = ARTEFACT_ROOTS[0]
ARTEFACT_STORAGE = env_choice("PEDIGREE_ARTEFACT_STORAGE", "filesystem", ("filesystem", "s3"))
if ARTEFACT_STORAGE == "s3":
    if find_spec("storages") is None or find_spec("boto3") is None:
        raise ImproperlyConfigured(
            "PEDIGREE_ARTEFACT_STORAGE=s3 needs django-storages with boto3; install the s3 extra "
            "(`pip install 'pedigree[s3]'`) or unset PEDIGREE_ARTEFACT_STORAGE."
        )
    if env_str("PEDIGREE_S3_BUCKET") is None:
        raise ImproperlyConfigured("PEDIGREE_ARTEFACT_STORAGE=s3 needs PEDIGREE_S3_BUCKET.")
    # Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
    # AWS_PROFILE, an instance role), never from these settings.
    STORAGES["artefacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("PEDIGREE_S3_BUCKET"),
            "location": env_str("PEDIGREE_S3_PREFIX", ""),
            "endpoint_url": env_str("PEDIGREE_S3_ENDPOINT_URL"),
            "region_name": env_str("PEDIGREE_S3_REGION"),
        },
    }
else:
    STORAGES["artefacts"] = {"BACKEND": "registry.storage.ArtefactStore"}
HUB_ALLOWED_HOSTS = env_list("PEDIGREE_HUB_ALLOWED_HOSTS", ["huggingface.co"])
# An upload no version takes within this many hours expires: the uploads sweep deletes it.
# The most bytes one artefact upload may hold (all its files); 20 GiB by default.
PEDIGREE_MAX_UPLOAD_BYTES = env_int("PEDIGREE_MAX_UPLOAD_BYTES", 20 * 1024**3, minimum=1)
PEDIGREE_UPLOAD_TTL_HOURS = env_int("PEDIGREE_UPLOAD_TTL_HOURS", 24, minimum=1)
# `POST artefacts/inspect/` hashes at most this many bytes inside the request (256 MiB); a larger
# artefact is inspected by a task (202 and an inspection to poll). 0: always by a task.
PEDIGREE_INSPECT_INLINE_MAX_BYTES = env_int("PEDIGREE_INSPECT_INLINE_MAX_BYTES", 256 * 1024**2)
# The most bytes of JSON one artefact's stored manifest may take (1 MiB): above it, tensor shapes
# and then safetensors metadata are summarised by count and hash; a file list alone above it is
# refused. At least 64 KiB, what one file's metadata may keep.
PEDIGREE_MAX_MANIFEST_BYTES = env_int("PEDIGREE_MAX_MANIFEST_BYTES", 1024**2, minimum=64 * 1024)

# Governance: approvals must be renewed (recertification); waivers are short-lived.
PEDIGREE_APPROVAL_VALID_DAYS = env_int("PEDIGREE_APPROVAL_VALID_DAYS", 180, minimum=1)
PEDIGREE_WAIVER_MAX_DAYS = env_int("PEDIGREE_WAIVER_MAX_DAYS", 90, minimum=1)
# The dashboard lists approvals and waivers that lapse within this many days.
PEDIGREE_EXPIRY_WARNING_DAYS = env_int("PEDIGREE_EXPIRY_WARNING_DAYS", 14, minimum=1)
# The most rows one page of a list holds, whatever `?limit=` asks.
PEDIGREE_MAX_PAGE_SIZE = env_int("PEDIGREE_MAX_PAGE_SIZE", 500, minimum=1)
# Request bodies: JSON nested deeper than this is refused with a 400.
PEDIGREE_MAX_JSON_DEPTH = env_int("PEDIGREE_MAX_JSON_DEPTH", 32, minimum=2)
# Hosts or addresses webhooks may reach although they are loopback, private or link-local.
PEDIGREE_WEBHOOK_ALLOWED_HOSTS = env_list("PEDIGREE_WEBHOOK_ALLOWED_HOSTS", [])
PEDIGREE_WEBHOOK_TIMEOUT = env_int("PEDIGREE_WEBHOOK_TIMEOUT", 10, minimum=1)
# A delivery `sending` for longer than this lost its worker (it outlasts the delivery task's
# hard time limit, the webhook timeout + 60 s): a redelivered task or the sweep takes it over.
PEDIGREE_DELIVERY_STALE_SECONDS = env_int(
    "PEDIGREE_DELIVERY_STALE_SECONDS", PEDIGREE_WEBHOOK_TIMEOUT + 90, minimum=1
)
# A delivery still `pending` this long after its message went to the broker was lost by the
# broker (flushed, restarted without persistence): the sweep publishes it again, and fails it
# after as many re-publishes as a delivery has attempts (5) that no worker took.
PEDIGREE_DELIVERY_QUEUED_STALE_SECONDS = env_int(
    "PEDIGREE_DELIVERY_QUEUED_STALE_SECONDS", 900, minimum=1
)
# Signed checkpoints of the audit chain (docs/security.md#audit-checkpoints). The signing key
# lives only where checkpoints are written; verifiers hold the public key alone, and the file
# sink should sit where the database's writers cannot rewrite it.
PEDIGREE_AUDIT_SIGNING_KEY = env_key32("PEDIGREE_AUDIT_SIGNING_KEY")
PEDIGREE_AUDIT_VERIFY_KEY = env_key32("PEDIGREE_AUDIT_VERIFY_KEY")
PEDIGREE_AUDIT_CHECKPOINT_FILE = env_str("PEDIGREE_AUDIT_CHECKPOINT_FILE")
PEDIGREE_AUDIT_CHECKPOINT_SECONDS = env_int("PEDIGREE_AUDIT_CHECKPOINT_SECONDS", 3600, minimum=60)
# How often every version's compliance is recomputed (celery beat; the embedded default
# recomputes stale ones when the dashboard is opened, or run `manage.py compliance_recheck`).
PEDIGREE_COMPLIANCE_RECHECK_SECONDS = env_int(
    "PEDIGREE_COMPLIANCE_RECHECK_SECONDS", 3600, minimum=60
)

# True only when a reverse proxy that overwrites X-Forwarded-Proto and X-Forwarded-For sits in
# front: without one, a client could claim HTTPS or another address (and another rate limit).
BEHIND_PROXY = env_bool("PEDIGREE_BEHIND_PROXY", False)

# Admin sign-in lockout (django-axes): this many failures for one username from one address lock
# that pair out for the cool-off, which each further try during it restarts. Keyed on the pair, so
# a guesser cannot lock the real user out from elsewhere; a success clears the count.
AXES_FAILURE_LIMIT = env_int("PEDIGREE_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PEDIGREE_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
# No start-up banner on every manage.py command; failed sign-ins are still logged.
AXES_VERBOSE = False
# The same client address as the API's throttles: X-Forwarded-For only behind a trusted proxy.
AXES_CLIENT_IP_CALLABLE = "registry.api.throttling.client_address"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "registry.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "registry.api.base.CappedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "registry.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Per token (user) and per anonymous address; 429 with Retry-After beyond the rate.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "registry.api.throttling.TokenRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("PEDIGREE_THROTTLE_ANON", "120/minute"),
        "user": env_rate("PEDIGREE_THROTTLE_USER", "6000/minute"),
    },
    # The client's address is the last proxy's X-Forwarded-For entry behind a proxy, else the
    # connection's: a client-sent X-Forwarded-For alone is never believed.
    "NUM_PROXIES": 1 if BEHIND_PROXY else 0,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Pedigree API",
    "DESCRIPTION": "Model registry and governance for base and derived models.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The default enum hook, then the one JSON error envelope (`Error`) on every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "registry.api.schema.document_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "registry.models.Stage",
        "RiskTierEnum": "registry.models.RiskTier",
        "InspectionStatusEnum": "registry.models.InspectionStatus",
        "ProposalStatusEnum": "registry.models.ProposalStatus",
        "EvaluationRunStatusEnum": "evaluators.models.RunStatus",
        "KindEnum": "registry.models.ModelKind",
        "EvaluationDeviceEnum": "evaluators.models.Device",
        "VersionNodeKindEnum": "lineage.api.answers.VERSION_NODE",
        "DatasetNodeKindEnum": "lineage.api.answers.DATASET_NODE",
        "DerivationEdgeKindEnum": "lineage.api.answers.DERIVATION_EDGE",
        "TrainingDataEdgeKindEnum": "lineage.api.answers.TRAINING_DATA_EDGE",
    },
}

# Celery: with no broker, tasks run in-process (the embedded default). Their errors propagate to
# whoever sent them: a task records its expected failures itself, so none is hidden.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Housekeeping shares the events queue with webhook deliveries: short tasks that must not wait
# behind a long evaluation on the cpu queue.
CELERY_TASK_ROUTES = {
    name: {"queue": "events"}
    for name in (
        "registry.tasks.deliver_event",
        "registry.tasks.relay_outbox",
        "registry.tasks.sweep_deliveries",
        "registry.tasks.seal_audit_chain",
        "registry.tasks.sweep_uploads",
        "evaluators.tasks.sweep_evaluation_runs",
    )
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Evaluations (docs/evaluations.md). A running evaluation whose heartbeat is older than
# STALE_SECONDS lost its worker: a redelivered task may re-claim it, and the periodic sweep
# re-queues it, up to MAX_ATTEMPTS tries in all. The broker must not redeliver a task that is
# still running, so its visibility timeout outlasts the task's time limit.
PEDIGREE_EVALUATION_STALE_SECONDS = env_int("PEDIGREE_EVALUATION_STALE_SECONDS", 600, minimum=1)
PEDIGREE_EVALUATION_MAX_ATTEMPTS = env_int("PEDIGREE_EVALUATION_MAX_ATTEMPTS", 3, minimum=1)
PEDIGREE_EVALUATION_TIME_LIMIT = env_int("PEDIGREE_EVALUATION_TIME_LIMIT", 7200, minimum=1)
PEDIGREE_EVALUATION_SWEEP_SECONDS = env_int("PEDIGREE_EVALUATION_SWEEP_SECONDS", 60, minimum=1)
# A run still `queued` this long after its message went to the broker was lost by the broker
# (or no worker consumes its queue): the sweep publishes it again (a duplicate is harmless: the
# claim is a conditional UPDATE), and fails it after MAX_ATTEMPTS re-publishes no worker took.
# Keep it above the longest wait a run normally has in the queue at peak (docs/operations.md).
PEDIGREE_EVALUATION_QUEUED_STALE_SECONDS = env_int(
    "PEDIGREE_EVALUATION_QUEUED_STALE_SECONDS", 6 * 3600, minimum=1
)
# No evaluation output names or measures a group smaller than this, whatever a suite says.
PEDIGREE_MIN_GROUP_SIZE_FLOOR = env_int("PEDIGREE_MIN_GROUP_SIZE_FLOOR", 5, minimum=1)
# With no broker an evaluation runs in a thread of the web process, so a request answers at
# once; true runs it inside the request instead (the tests do, to read results right after).
PEDIGREE_EVALUATION_INLINE = env_bool("PEDIGREE_EVALUATION_INLINE", False)
# How often beat (and `manage.py outbox_relay`) relays outbox messages not sent after commit.
PEDIGREE_OUTBOX_RELAY_SECONDS = env_int("PEDIGREE_OUTBOX_RELAY_SECONDS", 10, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int(
        "PEDIGREE_BROKER_VISIBILITY_TIMEOUT", PEDIGREE_EVALUATION_TIME_LIMIT + 600, minimum=1
    )
}
# `make worker` runs beat inside the worker (-B); its schedule state lives with the data.
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "evaluations-sweep": {
        "task": "evaluators.tasks.sweep_evaluation_runs",
        "schedule": float(PEDIGREE_EVALUATION_SWEEP_SECONDS),
    },
    "uploads-sweep": {"task": "registry.tasks.sweep_uploads", "schedule": 3600.0},
    # Seals what a crashed process committed but did not seal; each commit seals its own.
    "audit-seal": {"task": "registry.tasks.seal_audit_chain", "schedule": 60.0},
    # Sends what the relay after each commit could not (the broker was down).
    "outbox-relay": {
        "task": "registry.tasks.relay_outbox",
        "schedule": float(PEDIGREE_OUTBOX_RELAY_SECONDS),
    },
    "deliveries-sweep": {
        "task": "registry.tasks.sweep_deliveries",
        "schedule": float(PEDIGREE_EVALUATION_SWEEP_SECONDS),
    },
    "audit-checkpoint": {
        "task": "registry.tasks.write_audit_checkpoint",
        "schedule": float(PEDIGREE_AUDIT_CHECKPOINT_SECONDS),
    },
    # Catches what no write triggers: approvals and waivers expiring, evaluations going stale.
    "compliance-recheck": {
        "task": "registry.tasks.recheck_compliance",
        "schedule": float(PEDIGREE_COMPLIANCE_RECHECK_SECONDS),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

if BEHIND_PROXY:
    # Only a proxy that sets these headers itself may be believed about them.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
