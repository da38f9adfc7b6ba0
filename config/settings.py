"""Séjour settings: everything comes from the environment (django-environ).

With no environment but DEBUG=1 (what ``./dev`` sets) the app runs on the *embedded default*: a SQLite
file and a filesystem Celery broker under ``var/``. With DEBUG off it refuses to start without real
secrets (config/fail_closed.py). Production sets DATABASE_URL, CELERY_BROKER_URL,
SECRET_KEY, ENCRYPTION_KEY, ALLOWED_HOSTS and DEBUG=0 (see README, "Configuration").
"""
from datetime import timedelta
from pathlib import Path

import environ
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("READ_DOT_ENV_FILE", default=False):
    environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = Path(env("SEJOUR_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="dev-insecure-secret-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Key used to encrypt secrets stored in the database (SMTP passwords). A Fernet key
# (32 url-safe base64 bytes); without it a key is derived from SECRET_KEY.
ENCRYPTION_KEY = env("ENCRYPTION_KEY", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "auditlog",
    "axes",
    "core",
    "structures",
    "mailing",
    "billing",
    "residents",
    "payers",
    "sepa",
    "reminders",
    "imports",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    # Last: turns a login refused by django-axes into the French lockout page (429).
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
                "structures.context_processors.sections",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'sejour.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the embedded worker share the file (README, "Workers and queues"): WAL
    # (readers never wait for the writer), a busy timeout (a writer waits up to 20 s for the lock
    # instead of failing) and IMMEDIATE transactions (the write lock is taken at BEGIN, so a
    # transaction that read first never has to upgrade its lock: that upgrade fails at once with
    # « database is locked » when a job committed meanwhile, whatever the timeout).
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    })
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes, core/auth.py): per login + IP address, on the app and the admin.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env.bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.auth.client_ip"
AXES_LOCKOUT_CALLABLE = "core.auth.lockout_response"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
if STATIC_ROOT.is_relative_to(VAR_DIR):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# manage.py backup / restore (core.services.backup): default output folder, and the tables the
# migrations fill by themselves (their rows do not make a database "non-empty" for restore).
BACKUP_DIR = Path(env("BACKUP_DIR", default=str(VAR_DIR / "backups")))
# Official PES V2 schema bundle (the Schemas_PES tree of one version) supplied by the operator: when
# set, every PES ORMC file is also validated against PES_V2/Rev0/PES_Aller.xsd before it is stored.
PES_XSD_DIR = env("PES_XSD_DIR", default="")
BACKUP_REFERENCE_TABLES = ["billing_nationalparameter"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("STATIC_MANIFEST", default=False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not env.bool("STATIC_MANIFEST", default=False)

# --- Security (production values come from the environment) -----------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_HTTPS_PROXY", default=False) else None
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
# `manage.py check --deploy` must be clean in production; silence a check only knowingly.
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

# --- Celery ---------------------------------------------------------------------------------
# Embedded default: kombu's filesystem transport under var/broker (no server needed).
_broker_dir = VAR_DIR / "broker"
# Redis: a message not acknowledged within this time is delivered again. It must exceed the hard
# time limit below (acks_late: a task is acknowledged when it ends) and any countdown.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=7200)
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
# Results live in our own Job table, not in a result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("CELERY_WORKER_MAX_TASKS_PER_CHILD", default=200)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", default=400_000)  # KiB
# Processes per worker (None: one per CPU); `--concurrency` on the command line wins.
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=None)
# Time limits of one task (a generation, one batch of a campaign…): the soft limit raises inside the
# task (the job is recorded as failed), the hard one kills the process. Keep visibility_timeout above.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3300)
# Queues (README, "Workers and queues"): mail sending, PDF rendering, the rest. A worker started
# without -Q consumes all three (./dev run); production runs one worker service per queue.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue(name, Exchange("celery", type="direct"), routing_key=name)
                      for name in ("celery", "mail", "pdf")]
CELERY_TASK_ROUTES = ("core.routing.route_task",)
# Queue of core.tasks.run_job by job kind (a kind, or a prefix ending with ".").
JOB_QUEUES = {"mailing.": "mail", "billing.render_pdfs": "pdf", "billing.statements_print": "pdf"}
# A running job is leased by its worker for this long, renewed while it runs; the beat task
# jobs_mark_stale (every minute) marks failed a job whose lease expired (worker killed).
JOB_LEASE_SECONDS = env.int("JOB_LEASE_SECONDS", default=60)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "jobs-mark-stale": {"task": "core.tasks.jobs_mark_stale", "schedule": 60},
    # Messages left by a dead worker and retries that came due.
    "mailing-outbox-due": {"task": "mailing.tasks.outbox_process_due", "schedule": 60},
    "imports-files-purge": {"task": "imports.tasks.import_files_purge", "schedule": 24 * 3600},
    "sepa-mandates-lapse": {"task": "sepa.tasks.mandates_lapse", "schedule": 24 * 3600},
    # The month's reminder proposals (idempotent: once per section and month; never sends).
    "reminders-proposals": {"task": "reminders.tasks.proposals_prepare", "schedule": 24 * 3600},
    # The previous quarter's pocket-money settlement (§8), once its months are issued (idempotent).
    "billing-pocket-money": {"task": "billing.tasks.pocket_money_prepare", "schedule": 24 * 3600},
}

# --- Mail (the association's SMTP is used for invoices; this is for system mails) -----------
EMAIL_HOST = env("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=1025)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="sejour@localhost")
MAILSINK_DIR = VAR_DIR / "mailsink"
# Invoice mailing (the association's SMTP account is configured in the application).
MAIL_MAX_ATTACHMENT_BYTES = env.int("MAIL_MAX_ATTACHMENT_BYTES", default=10 * 1024 * 1024)
MAIL_WARN_ATTACHMENT_BYTES = env.int("MAIL_WARN_ATTACHMENT_BYTES", default=1024 * 1024)
MAIL_RETRY_DELAYS = env.list("MAIL_RETRY_DELAYS", cast=int, default=[60, 300, 900])
MAIL_SENDING_LEASE_SECONDS = env.int("MAIL_SENDING_LEASE_SECONDS", default=900)
MAIL_SMTP_TIMEOUT = env.int("MAIL_SMTP_TIMEOUT", default=30)
MAIL_MESSAGES_PER_CONNECTION = env.int("MAIL_MESSAGES_PER_CONNECTION", default=100)
MAIL_SMTP_CAFILE = env("MAIL_SMTP_CAFILE", default="") or None
# Who asks Microsoft Entra ID for the OAuth2 token of Office 365 SMTP (tests put a fake one here).
MAIL_OAUTH_TOKEN_PROVIDER = "mailing.services.oauth.msal_token"
# A campaign batch sleeps for the pace at most this long; a longer wait ends the batch and the next
# one is scheduled (countdown) so that no mail worker process sleeps through a campaign.
MAIL_MAX_INLINE_WAIT_SECONDS = env.float("MAIL_MAX_INLINE_WAIT_SECONDS", default=1.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # WeasyPrint and fontTools log every rendering step at INFO (« Step 1 - Fetching… »): hundreds of
        # lines per command run. Only their warnings and errors are kept.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

AUDITLOG_INCLUDE_ALL_MODELS = False

# Journal exports of periods with more invoices than this are written by a worker (job page download).
JOURNAL_SYNC_EXPORT_LIMIT = env.int("JOURNAL_SYNC_EXPORT_LIMIT", default=2000)

# A social-aid (ASH) application still pending this many months after its filing is a warning of the
# period's pre-flight checks (départements commonly take months; chase them).
SOCIAL_AID_PENDING_WARNING_MONTHS = env.int("SOCIAL_AID_PENDING_WARNING_MONTHS", default=4)

# Import workbooks (.xlsx are ZIP archives) are refused, before being parsed, when they would expand
# beyond this size or compress more than this ratio ("zip bombs"); an import job may use at most
# IMPORT_JOB_MEMORY_BYTES of memory more than when it started (0: no limit).
IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES = env.int("IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES", default=256 * 1024 * 1024)
IMPORT_XLSX_MAX_RATIO = env.int("IMPORT_XLSX_MAX_RATIO", default=200)
IMPORT_JOB_MEMORY_BYTES = env.int("IMPORT_JOB_MEMORY_BYTES", default=1024 * 1024 * 1024)

# Uploaded import files are deleted after this many days (the run and its report are kept).
IMPORT_FILES_RETENTION_DAYS = env.int("IMPORT_FILES_RETENTION_DAYS", default=90)

# seed_demo creates demo logins with known passwords: only where asked for (`./dev` and the tests
# set DEMO_ALLOWED=1); `check --deploy` fails while it is on or while a demo login exists.
DEMO_ALLOWED = env.bool("DEMO_ALLOWED", default=False)

# Fail closed: with DEBUG off, no start on the development SECRET_KEY, a placeholder or without ENCRYPTION_KEY.
from config.fail_closed import refuse_insecure_start  # noqa: E402

refuse_insecure_start(debug=DEBUG, secret_key=SECRET_KEY, encryption_key=ENCRYPTION_KEY)
