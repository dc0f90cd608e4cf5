"""Django settings, read from the environment (see README "Configuration").

DATABASE_URL      default: SQLite in the data dir (WAL mode, busy timeout)
REDIS_URL         broker, result store and channel layer; `perfmon up` starts a private one when unset
PERFMON_DATA_DIR  default ./var
SECRET_KEY        default: generated once and kept in the data dir
DEBUG             default off
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from perfmon.database import database_settings
from perfmon.env import ConfigError, data_dir, env_bool, env_int, env_list, secret_key
from perfmon.security import allowed_hosts

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = data_dir()
SECRET_KEY = secret_key(DATA_DIR)
DEBUG = env_bool("DEBUG", False)
# --- Request security (perfmon/security.py; README "Security") ---
# The hosts we answer to (and the Origins the WebSocket accepts): PERFMON_ALLOWED_HOSTS, else what
# `perfmon up --host` is bound to plus localhost; never "*" unless set so.
ALLOWED_HOSTS = allowed_hosts()
CSRF_TRUSTED_ORIGINS = env_list("PERFMON_CSRF_TRUSTED_ORIGINS", [])
# Over TLS (seen directly or through a proxy's X-Forwarded-Proto that uvicorn trusts), cookies are
# marked Secure by SecurityHeadersMiddleware and Django sends HSTS; PERFMON_HTTPS=true also marks
# them Secure on plain requests (for proxies uvicorn does not trust) and redirects http to https.
PERFMON_HTTPS = env_bool("PERFMON_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = PERFMON_HTTPS
SECURE_HSTS_SECONDS = env_int("PERFMON_HSTS_SECONDS", 365 * 24 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
# A JSON body over this is refused with a 400 {"error"} (uploads are streamed and do not count).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("PERFMON_MAX_BODY_BYTES", 2_621_440)
# --- end request security ---

# The name this node's sampler and worker register under.
NODE_NAME = os.environ.get("PERFMON_NODE_NAME") or socket.gethostname()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "perfmon.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: makes the chain above run in the request's thread, not hop to the event loop and back
    # around every middleware (perfmon/sync_chain.py).
    "perfmon.sync_chain.OneThreadPerRequest",
]

ROOT_URLCONF = "perfmon.urls"
ASGI_APPLICATION = "perfmon.asgi.application"

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
                "dashboard.alerting.context.firing_alerts",
            ],
        },
    },
]


DATABASES = {"default": database_settings(DATA_DIR, NODE_NAME)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start while it is missing
# Served by WhiteNoise straight from static/ as well, so a checkout works before collectstatic.
WHITENOISE_USE_FINDERS = True

# Redis: one server is broker, result store and channel layer. Unset means "not configured":
# `perfmon up` and the test suite start a private Redis and set REDIS_URL for their children.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# Every Redis call is bounded: a stalled Redis (SIGSTOP, a full disk, a network partition) must make
# callers fail within seconds, never hold a request thread, the sampler's tick or a benchmark.
REDIS_SOCKET_TIMEOUT_S = 3.0
REDIS_CONNECT_TIMEOUT_S = 2.0

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
                    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
                }
            ],
            "prefix": "perfmon",
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
# One job at a time per worker process: two benchmarks sharing a device make both worthless.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TRACK_STARTED = True
# Bounded broker and result-store calls (kombu and the Redis result backend wait 120 s or forever by
# default). The socket timeout must exceed kombu's 1 s BRPOP poll, or idle workers would time out.
_REDIS_TIMEOUTS = {
    "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
}
CELERY_BROKER_TRANSPORT_OPTIONS = {**_REDIS_TIMEOUTS, "health_check_interval": 10}
CELERY_REDIS_SOCKET_TIMEOUT = REDIS_SOCKET_TIMEOUT_S
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_CONNECT_TIMEOUT_S
# Sending a task also subscribes the sender to its result: give up on that in about 2 s too
# (Celery's default retries 20 times).
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 0.5,
        "timeout": 2.0,
    }
}
# A publish gives up after about a second instead of retrying for ~20 s; job submission has its own,
# shorter path (dashboard.actions) and the queued-job sweep sends again what did not get through.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}
# Workers and beat ride out any Redis outage (the supervisor would restart them anyway).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# How often each worker writes its liveness to Redis, and after how long without it a worker counts
# as gone (/healthz, the orphaned-job sweep). A busy worker still beats: a thread of its main process does.
WORKER_BEAT_S = 2.0
WORKER_STALE_AFTER_S = 15.0
# A queued job whose broker message has vanished (Redis restarted, or enqueueing failed while Redis
# was away) is sent again once it has been queued this long.
QUEUED_RESEND_AFTER_S = float(os.environ.get("PERFMON_QUEUED_RESEND_AFTER_S", "10"))
# A running job whose worker stopped answering is failed as "worker lost": looked for every
# ORPHAN_SWEEP_S, once the job has run ORPHAN_GRACE_S (a worker that just started gets time to report).
ORPHAN_SWEEP_S = float(os.environ.get("PERFMON_ORPHAN_SWEEP_S", "15"))
ORPHAN_GRACE_S = float(os.environ.get("PERFMON_ORPHAN_GRACE_S", "20"))
CELERY_BEAT_SCHEDULE = {
    "fail-orphaned-jobs": {"task": "perfmon.fail_orphaned_jobs", "schedule": ORPHAN_SWEEP_S},
    "resend-lost-queued-jobs": {"task": "perfmon.resend_lost_queued_jobs", "schedule": ORPHAN_SWEEP_S},
    "fail-interrupted-validations": {
        "task": "perfmon.fail_interrupted_validations",
        "schedule": ORPHAN_SWEEP_S,
    },
    # Metric history: merge each closed hour's raw blocks into one (what keeps a sample at a few
    # bytes on disk), and delete what is past retention.
    "compact-metric-history": {"task": "perfmon.compact_metric_history", "schedule": 300.0},
    "enforce-retention": {"task": "perfmon.enforce_retention", "schedule": 3600.0},
    # Notifications whose task was lost or whose worker died mid-attempt (dashboard/alerting/delivery.py).
    "sweep-stuck-deliveries": {"task": "perfmon.sweep_stuck_deliveries", "schedule": 30.0},
}

# --- Notifications (dashboard/alerting/notify.py, transports.py) ---
# Links in notifications (Alertmanager's externalURL and generatorURL) point here.
PERFMON_EXTERNAL_URL = (os.environ.get("PERFMON_EXTERNAL_URL") or "http://localhost:8000").rstrip("/")
# A delivery that times out, gets a 5xx or cannot connect is tried again after
# NOTIFY_RETRY_BASE_S, doubling each time up to NOTIFY_RETRY_MAX_S, at most NOTIFY_MAX_ATTEMPTS in all.
NOTIFY_MAX_ATTEMPTS = env_int("PERFMON_NOTIFY_MAX_ATTEMPTS", 6)
NOTIFY_RETRY_BASE_S = float(os.environ.get("PERFMON_NOTIFY_RETRY_BASE_S") or "5")
NOTIFY_RETRY_MAX_S = float(os.environ.get("PERFMON_NOTIFY_RETRY_MAX_S") or "600")
NOTIFY_TIMEOUT_S = float(os.environ.get("PERFMON_NOTIFY_TIMEOUT_S") or "10")
if NOTIFY_MAX_ATTEMPTS < 1 or NOTIFY_RETRY_BASE_S <= 0 or NOTIFY_TIMEOUT_S <= 0:
    raise ConfigError("PERFMON_NOTIFY_MAX_ATTEMPTS must be >= 1; retry base and timeout positive")
# Email: Django's backends. By default each message is written as a file under <data dir>/sent-mail
# (nothing leaves the machine until an SMTP server is configured with PERFMON_EMAIL_BACKEND=
# django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, ...).
EMAIL_BACKEND = os.environ.get("PERFMON_EMAIL_BACKEND") or "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = str(DATA_DIR / "sent-mail")
EMAIL_HOST = os.environ.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = NOTIFY_TIMEOUT_S
DEFAULT_FROM_EMAIL = os.environ.get("PERFMON_FROM_EMAIL") or "perfmon@localhost"
# --- end notifications ---

# How long metric history is kept: raw samples (hours), 1-minute and 1-hour rollups (days).
HISTORY_RETENTION_RAW_H = env_int("PERFMON_RETENTION_RAW_H", 48)
HISTORY_RETENTION_1M_D = env_int("PERFMON_RETENTION_1M_D", 30)
HISTORY_RETENTION_1H_D = env_int("PERFMON_RETENTION_1H_D", 365)
if min(HISTORY_RETENTION_RAW_H, HISTORY_RETENTION_1M_D, HISTORY_RETENTION_1H_D) < 1:
    raise ConfigError("PERFMON_RETENTION_RAW_H, _1M_D and _1H_D must each be at least 1")

# A sampler not heard from for this long counts as down in /healthz and the node list.
SAMPLER_STALE_AFTER_S = env_int("PERFMON_SAMPLER_STALE_AFTER_S", 10)
SAMPLE_INTERVAL_S = float(os.environ.get("PERFMON_SAMPLE_INTERVAL_S", "1.0"))
# `perfmon up --demo-gpus N`: the sampler reads N simulated GPUs instead of NVML (pages say "simulated").
DEMO_GPUS = env_int("PERFMON_DEMO_GPUS", 0)
if not 0 <= DEMO_GPUS <= 16:
    raise ConfigError("PERFMON_DEMO_GPUS must be between 0 and 16")
PERFMON_MAX_UPLOAD_BYTES = env_int("PERFMON_MAX_UPLOAD_BYTES", 2 << 30)  # per model upload; more is a 400
# Per labeled data set (.npz): the upload, and x and y inflated together. The web process holds the
# arrays while it checks them (about twice this at the peak), so this bounds its memory per upload.
PERFMON_MAX_DATASET_BYTES = env_int("PERFMON_MAX_DATASET_BYTES", 256 << 20)
PERFMON_REGRESSION_THRESHOLD = float(os.environ.get("PERFMON_REGRESSION_THRESHOLD") or "0.10")  # +10% p50

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PERFMON_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# Deployments (issue #10). After a promotion perfmon watches the deployment for this long, then
# says whether latency improved: the mean during the window must be this fraction below the mean
# over as long a time before it.
DEPLOY_VERIFY_WINDOW_S = env_int("PERFMON_DEPLOY_VERIFY_WINDOW_S", 600)
DEPLOY_VERIFY_MIN_IMPROVEMENT = float(os.environ.get("PERFMON_DEPLOY_VERIFY_MIN_IMPROVEMENT") or "0.05")
# A verdict needs this many latency values on each side, and a drop significant at this level.
DEPLOY_VERIFY_MIN_SAMPLES = env_int("PERFMON_DEPLOY_VERIFY_MIN_SAMPLES", 5)
DEPLOY_VERIFY_ALPHA = float(os.environ.get("PERFMON_DEPLOY_VERIFY_ALPHA") or "0.05")
# A probe is a short harness run: at most this long (warm-up included) on the deployment's device.
DEPLOY_PROBE_BUDGET_S = float(os.environ.get("PERFMON_DEPLOY_PROBE_BUDGET_S") or "2.0")
DEPLOY_PROBE_E2E_REQUESTS = 20  # HTTP round trips a probe times when the deployment has an endpoint
DEPLOY_SCHEDULE_S = 5.0  # how often beat looks for deployments due a probe, a scrape or a verdict
CELERY_BEAT_SCHEDULE.update(
    {
        "schedule-deployment-probes": {"task": "perfmon.schedule_probes", "schedule": DEPLOY_SCHEDULE_S},
        "scrape-deployments": {"task": "perfmon.scrape_deployments", "schedule": DEPLOY_SCHEDULE_S},
        "verify-promotions": {"task": "perfmon.verify_promotions", "schedule": DEPLOY_SCHEDULE_S},
    }
)
