"""opsdash settings: everything comes from the environment, with safe defaults.

The defaults run the embedded mode (SQLite in WAL mode + a filesystem Celery broker). Point
DATABASE_URL at PostgreSQL and CELERY_BROKER_URL at Redis or RabbitMQ to scale out.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("OPSDASH_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()


def env_secret(name: str, default: str) -> str:
    """A secret from NAME, or from the file named by NAME_FILE (for Docker/K8s secrets)."""
    file_name = env.str(f"{name}_FILE", default="")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)

# Demo-only defaults: clearly marked, and refused below when DEBUG is off.
DEMO_SECRET_KEY = "demo-insecure-secret-key-do-not-use-in-production"
DEMO_PII_HMAC_KEY = "demo-insecure-pii-hmac-key-do-not-use-in-production"

SECRET_KEY = env_secret("SECRET_KEY", DEMO_SECRET_KEY)
PII_HMAC_KEY = env_secret("PII_HMAC_KEY", DEMO_PII_HMAC_KEY)
if not DEBUG:
    for _name, _value, _demo in (
        ("SECRET_KEY", SECRET_KEY, DEMO_SECRET_KEY),
        ("PII_HMAC_KEY", PII_HMAC_KEY, DEMO_PII_HMAC_KEY),
    ):
        if _value == _demo:
            raise ImproperlyConfigured(
                f"{_name} is the demo default, which is refused with DEBUG=False. "
                f"Set {_name} (or {_name}_FILE) to a long random value, or DEBUG=1 for a demo."
            )
        if len(_value) < 32:
            raise ImproperlyConfigured(f"{_name} must be at least 32 characters long.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_filters",
    "apps.core",
    "apps.accounts",
    "apps.fleet",
    "apps.audit",
    "apps.actions",
    "apps.demo",
    "apps.policy",
    "apps.chatops",
    "apps.assist",
    "apps.notifications",
    "apps.slo",
    "apps.billing",
    "apps.costs",
    "apps.budgets",
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
    "apps.core.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "opsdash.urls"

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
                "apps.core.context_processors.navigation",
                "apps.notifications.context_processors.notifications",
            ],
        },
    },
]

WSGI_APPLICATION = "opsdash.wsgi.application"
ASGI_APPLICATION = "opsdash.asgi.application"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'opsdash.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
        # two writers queue on busy_timeout instead of failing with "database is locked".
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    # Persistent connections (health-checked before reuse). A maximum age makes every thread
    # that opened its connection at start-up reconnect in the same second: two dozen new
    # PostgreSQL backends warming their caches at once stalled the API for ~0.5 s each minute.
    _max_age = env.str("DB_CONN_MAX_AGE", default="none")
    DATABASES["default"].setdefault(
        "CONN_MAX_AGE", None if _max_age.lower() == "none" else int(_max_age)
    )
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # Hot statements (token lookup, proposal, seal) are planned once per connection (psycopg
    # prepared statements; Django turns them off by default for transaction-pooling proxies).
    # Behind PgBouncer in transaction mode without max_prepared_statements, set it to "off".
    _prepare = env.str("DB_PREPARE_THRESHOLD", default="5")
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
        None if _prepare.lower() == "off" else int(_prepare)
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
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
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "opsdash API",
    "DESCRIPTION": (
        "Audit-log ingestion and control API for AI agents in IT operations. "
        "Authenticate with `Authorization: Bearer <token>` (agent or personal token)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from our own static files: nothing is loaded from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # 3.1 is JSON Schema 2020-12, which the msgspec components are written in (`type: null`).
    "OAS_VERSION": "3.1.0",
    # Two models have a `scope` field with their own choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "BudgetScopeEnum": "apps.budgets.models.BudgetScope",
        "SloScopeEnum": "apps.slo.models.SloScope",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.audit.openapi.add_event_schemas",
    ],
}

# Celery: a filesystem broker by default so the embedded mode needs no service.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # The exchange tables too, or kombu writes them under the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "audit-derived-sweep": {
        "task": "audit.derived_sweep",
        "schedule": env.float("DERIVED_SWEEP_SECONDS", default=60.0),
    },
    "audit-ledger-verify": {
        "task": "audit.ledger_verify",
        "schedule": env.float("LEDGER_VERIFY_SECONDS", default=24 * 3600.0),
    },
    "chatops-interactions-prune": {
        "task": "chatops.interactions_prune",
        "schedule": 24 * 3600.0,
    },
    # Pending actions past their escalation or expiry time.
    "actions-deadlines-sweep": {
        "task": "actions.deadlines_sweep",
        "schedule": env.float("ACTION_DEADLINES_SWEEP_SECONDS", default=60.0),
    },
    # Agent callbacks, emails and chat messages whose queued task was lost.
    "actions-callbacks-sweep": {
        "task": "actions.callbacks_sweep",
        "schedule": env.float("OUTBOUND_SWEEP_SECONDS", default=60.0),
    },
    "notifications-outbox-sweep": {
        "task": "notifications.outbox_sweep",
        "schedule": env.float("OUTBOUND_SWEEP_SECONDS", default=60.0),
    },
    # PromQL SLOs: per-minute rollups read from PROMETHEUS_URL (apps.slo.promql).
    "slo-promql-refresh": {
        "task": "slo.promql_refresh",
        "schedule": env.float("PROMQL_REFRESH_SECONDS", default=60.0),
    },
    # SLO status, burn-rate alerts and automatic demotion.
    "slo-evaluate-all": {
        "task": "slo.evaluate_all",
        "schedule": env.float("SLO_EVALUATE_SECONDS", default=60.0),
    },
    # Measured GPU energy of self-hosted models, shared across their llm_calls.
    "costs-measured-energy": {
        "task": "costs.measured_energy_windows",
        "schedule": env.float("MEASURED_ENERGY_SECONDS", default=300.0),
    },
    "slo-promotion-suggest": {
        "task": "slo.promotion_suggest",
        "schedule": 24 * 3600.0,
    },
    # Budgets whose recent burn reaches the cap before the period ends: FinOps hear of it once.
    "budgets-forecast-alerts": {
        "task": "budgets.forecast_alerts",
        "schedule": env.float("BUDGET_FORECAST_SECONDS", default=3600.0),
    },
    # Gate reservations whose llm_call never came give their hold back to the budgets.
    "budgets-gate-reservations-expire": {
        "task": "budgets.gate_reservations_expire",
        "schedule": 60.0,
    },
    # Billing uploads whose task was lost are queued again; dead imports are marked failed.
    "billing-imports-sweep": {
        "task": "billing.imports_sweep",
        "schedule": 300.0,
    },
    # Anthropic's billed cost for the last ANTHROPIC_COST_PULL_DAYS days (no-op without a key).
    "costs-anthropic-billed-pull": {
        "task": "costs.anthropic_billed_pull",
        "schedule": env.float("ANTHROPIC_COST_PULL_SECONDS", default=24 * 3600.0),
    },
}

# Promotion suggestions: an agent that met every SLO over this many days, with this many actions.
SLO_PROMOTION_DAYS = env.int("SLO_PROMOTION_DAYS", default=90)
SLO_PROMOTION_MIN_ACTIONS = env.int("SLO_PROMOTION_MIN_ACTIONS", default=50)
if not 1 <= SLO_PROMOTION_DAYS <= 3650:
    raise ImproperlyConfigured("SLO_PROMOTION_DAYS must be between 1 and 3650.")
if SLO_PROMOTION_MIN_ACTIONS < 0:
    raise ImproperlyConfigured("SLO_PROMOTION_MIN_ACTIONS must be 0 or more.")
# Bearer token Prometheus sends to scrape /metrics; unset, /metrics is open only with DEBUG.
METRICS_TOKEN = env_secret("METRICS_TOKEN", "")

# Long-polls (GET /api/v1/actions/{id}?wait=) allowed to sleep at once per web process; keep it
# below the worker's thread count (WEB_THREADS) so other requests always find a thread.
LONG_POLL_SLOTS = env.int("LONG_POLL_SLOTS", default=max(1, env.int("WEB_THREADS", default=8) // 2))

# Ingest limits, published in the OpenAPI schema and at /api/v1/limits.
INGEST_MAX_ITEMS = env.int("INGEST_MAX_ITEMS", default=1000)
INGEST_MAX_BATCH_BYTES = env.int("INGEST_MAX_BATCH_BYTES", default=5 * 1024 * 1024)
INGEST_MAX_EVENT_BYTES = env.int("INGEST_MAX_EVENT_BYTES", default=256 * 1024)
INGEST_MAX_FUTURE_SKEW_SECONDS = env.int("INGEST_MAX_FUTURE_SKEW_SECONDS", default=300)
# Django's own body cap must not be lower than ours, or it would answer first with a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BATCH_BYTES + 1024

# Energy estimates (apps.costs.energy, where the defaults and their sources are): data-centre
# PUE, the grid region whose intensity prices gCO2e when an llm_call names none, extra grid
# intensities {"region": gCO2e/kWh} and per-model coefficients
# [{"model": "claude-haiku-*", "input_wh_per_1k": "0.1", "output_wh_per_1k": "0.3"}] as JSON.
COSTS_PUE = env.str("COSTS_PUE", default="1.2")
# How long a /gate reservation holds budget room if no llm_call settles it.
GATE_RESERVATION_SECONDS = env.int("GATE_RESERVATION_SECONDS", default=600)
COSTS_GRID_REGION = env.str("COSTS_GRID_REGION", default="world")
COSTS_GRID_INTENSITY = env.json("COSTS_GRID_INTENSITY", default={})
COSTS_ENERGY_COEFFICIENTS = env.json("COSTS_ENERGY_COEFFICIENTS", default=[])
try:
    from apps.costs.energy import energy_config_check

    # Cloud line items: Cloud Carbon Footprint coefficients (apps.costs.cloud_energy), JSON.
    COSTS_CLOUD_ENERGY = env.json("COSTS_CLOUD_ENERGY", default={})
    from apps.costs.cloud_energy import cloud_energy_config_check

    _llm_energy = energy_config_check(
        pue=COSTS_PUE,
        region=COSTS_GRID_REGION,
        grid=COSTS_GRID_INTENSITY,
        coefficients=COSTS_ENERGY_COEFFICIENTS,
    )
    cloud_energy_config_check(
        overrides=COSTS_CLOUD_ENERGY,
        pue=COSTS_PUE,
        grid=_llm_energy.grid,
        default_region=_llm_energy.default_region,
    )
    # Measured GPU power of self-hosted models (apps.costs.measured): a JSON list of
    # {"name", "provider", "model", "selector"} where selector is a PromQL selector of
    # DCGM_FI_DEV_POWER_USAGE (watts), summed over its series.
    COSTS_MEASURED_POWER = env.json("COSTS_MEASURED_POWER", default=[])
    from apps.costs.measured import measured_power_config_check

    measured_power_config_check(COSTS_MEASURED_POWER, grid=_llm_energy.grid.keys())
except ValueError as _exc:
    raise ImproperlyConfigured(str(_exc)) from _exc
# Windows of measured energy: their length, the query_range step (the trapezoid's interval),
# and how long after a window ends it is integrated (late scrapes and late llm_calls).
COSTS_MEASURED_WINDOW_MINUTES = env.int("COSTS_MEASURED_WINDOW_MINUTES", default=15)
COSTS_MEASURED_STEP_SECONDS = env.int("COSTS_MEASURED_STEP_SECONDS", default=15)
COSTS_MEASURED_LAG_MINUTES = env.int("COSTS_MEASURED_LAG_MINUTES", default=10)
# How far back the beat task looks for windows not yet integrated.
COSTS_MEASURED_LOOKBACK_HOURS = env.int("COSTS_MEASURED_LOOKBACK_HOURS", default=24)
if not 1 <= COSTS_MEASURED_WINDOW_MINUTES <= 1440 or 1440 % COSTS_MEASURED_WINDOW_MINUTES:
    raise ImproperlyConfigured(
        "COSTS_MEASURED_WINDOW_MINUTES must divide a day (e.g. 5, 15, 60), not "
        f"{COSTS_MEASURED_WINDOW_MINUTES}."
    )
if not 1 <= COSTS_MEASURED_STEP_SECONDS <= 300 or (
    COSTS_MEASURED_WINDOW_MINUTES * 60 % COSTS_MEASURED_STEP_SECONDS
):
    raise ImproperlyConfigured(
        "COSTS_MEASURED_STEP_SECONDS must be 1 to 300 and divide the window "
        f"({COSTS_MEASURED_WINDOW_MINUTES} min), not {COSTS_MEASURED_STEP_SECONDS}."
    )


def env_http_url(name: str, default: str) -> str:
    """An http(s) URL from NAME; anything else fails at start, not at the first request."""
    value = env.str(name, default=default).strip()
    if not value.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"{name}={value!r} must be an http:// or https:// URL.")
    return value


# The address people reach opsdash at, for links in messages sent elsewhere (Slack).
SITE_URL = env_http_url("SITE_URL", "http://localhost:8000").rstrip("/")

# Slack approvals (apps.chatops): off unless the signing secret, the bot token and the channel
# are all set. SLACK_API_URL points the Web API client elsewhere (tests use a local fake).
SLACK_SIGNING_SECRET = env_secret("SLACK_SIGNING_SECRET", "")
SLACK_BOT_TOKEN = env_secret("SLACK_BOT_TOKEN", "")
SLACK_APPROVALS_CHANNEL = env.str("SLACK_APPROVALS_CHANNEL", default="")
SLACK_API_URL = env_http_url("SLACK_API_URL", "https://slack.com/api/")

# Claude inside opsdash ("Explain" on an action): off without a key. ANTHROPIC_BASE_URL points
# the SDK elsewhere (a proxy, or the tests' local fake of the Messages API).
ANTHROPIC_API_KEY = env_secret("ANTHROPIC_API_KEY", "")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="")
ASSIST_MODEL = env.str("ASSIST_MODEL", default="claude-sonnet-5")
ASSIST_MAX_TOKENS = env.int("ASSIST_MAX_TOKENS", default=1024)
ASSIST_TIMEOUT_SECONDS = env.float("ASSIST_TIMEOUT_SECONDS", default=30.0)
# A person is waiting on the click: one retry at most, then a clear message.
ASSIST_MAX_RETRIES = env.int("ASSIST_MAX_RETRIES", default=1)
if not 1 <= ASSIST_MAX_TOKENS <= 64_000:
    raise ImproperlyConfigured("ASSIST_MAX_TOKENS must be between 1 and 64000.")
if not 0 < ASSIST_TIMEOUT_SECONDS <= 600:
    raise ImproperlyConfigured("ASSIST_TIMEOUT_SECONDS must be above 0 and at most 600.")
if not 0 <= ASSIST_MAX_RETRIES <= 5:
    raise ImproperlyConfigured("ASSIST_MAX_RETRIES must be between 0 and 5.")
# Billed cost from Anthropic's Admin API (apps.costs.billed): off without an Admin key
# (sk-ant-admin…). It reconciles the estimates from llm_call events and is never added to them.
# The daily pull re-reads the last ANTHROPIC_COST_PULL_DAYS days, as Anthropic restates recent
# days; ANTHROPIC_ADMIN_BASE_URL points the SDK elsewhere (a proxy, or the tests' local fake).
ANTHROPIC_ADMIN_KEY = env_secret("ANTHROPIC_ADMIN_KEY", "")
ANTHROPIC_ADMIN_BASE_URL = env.str("ANTHROPIC_ADMIN_BASE_URL", default="")
ANTHROPIC_ADMIN_TIMEOUT_SECONDS = env.float("ANTHROPIC_ADMIN_TIMEOUT_SECONDS", default=60.0)
# Nobody waits on the daily job: the SDK retries 429 and 5xx with backoff this many times.
ANTHROPIC_ADMIN_MAX_RETRIES = env.int("ANTHROPIC_ADMIN_MAX_RETRIES", default=4)
ANTHROPIC_COST_PULL_DAYS = env.int("ANTHROPIC_COST_PULL_DAYS", default=7)
# A halted agent's Anthropic API key (its anthropic_api_key_id) is set inactive through the
# Admin API after the halt commits, and active again on resume: the halt then holds even for
# calls that skip /gate.
HALT_DEACTIVATES_ANTHROPIC_KEY = env.bool("HALT_DEACTIVATES_ANTHROPIC_KEY", default=False)
# Reconciliation rows whose billed and estimated cost differ by at least this share are flagged.
ANTHROPIC_RECON_VARIANCE_PCT = env.str("ANTHROPIC_RECON_VARIANCE_PCT", default="10")
if not 0 < ANTHROPIC_ADMIN_TIMEOUT_SECONDS <= 600:
    raise ImproperlyConfigured("ANTHROPIC_ADMIN_TIMEOUT_SECONDS must be above 0 and at most 600.")
if not 0 <= ANTHROPIC_ADMIN_MAX_RETRIES <= 10:
    raise ImproperlyConfigured("ANTHROPIC_ADMIN_MAX_RETRIES must be between 0 and 10.")
if not 1 <= ANTHROPIC_COST_PULL_DAYS <= 365:
    raise ImproperlyConfigured("ANTHROPIC_COST_PULL_DAYS must be between 1 and 365.")
try:
    from decimal import Decimal as _Decimal

    if not 0 < _Decimal(ANTHROPIC_RECON_VARIANCE_PCT) <= 1000:
        raise ValueError
except (ValueError, ArithmeticError) as _exc:
    raise ImproperlyConfigured(
        "ANTHROPIC_RECON_VARIANCE_PCT must be a number above 0 and at most 1000."
    ) from _exc
# Notifications (links in them start with SITE_URL) and agent callbacks.
# Email: SMTP when EMAIL_HOST is set, the console in DEBUG, otherwise off (tests use locmem).
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=(
        "django.core.mail.backends.smtp.EmailBackend"
        if EMAIL_HOST
        else "django.core.mail.backends.console.EmailBackend"
        if DEBUG
        else "django.core.mail.backends.dummy.EmailBackend"
    ),
)
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="opsdash <opsdash@localhost>")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set at most one of EMAIL_USE_TLS and EMAIL_USE_SSL.")
# A Slack-compatible incoming webhook (its URL is a secret: NOTIFY_WEBHOOK_URL_FILE works).
NOTIFY_WEBHOOK_URL = env_secret("NOTIFY_WEBHOOK_URL", "")
NOTIFY_WEBHOOK_MAX_ATTEMPTS = env.int("NOTIFY_WEBHOOK_MAX_ATTEMPTS", default=8)
# Agent decision callbacks: 8 attempts, 30 s doubling (capped at 20 min), span about an hour.
CALLBACK_MAX_ATTEMPTS = env.int("CALLBACK_MAX_ATTEMPTS", default=8)
OUTBOUND_BACKOFF_BASE_SECONDS = env.float("OUTBOUND_BACKOFF_BASE_SECONDS", default=30.0)
for _name in ("NOTIFY_WEBHOOK_MAX_ATTEMPTS", "CALLBACK_MAX_ATTEMPTS"):
    if not 1 <= globals()[_name] <= 50:
        raise ImproperlyConfigured(f"{_name} must be between 1 and 50.")

# Django's cache holds small state the Celery worker writes and web processes read (a PromQL
# SLO's last refresh error, shown on its page), so it must be shared between processes: files
# under VAR_DIR by default (one machine, as the embedded mode), or CACHE_URL when web and
# workers run on several machines (e.g. redis://redis:6379/1).
CACHES = {"default": env.cache_url("CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")}

# PromQL SLOs read Prometheus's HTTP API here (e.g. http://prometheus:9090); without it they
# show "no data" with the reason.
PROMETHEUS_URL = env.str("PROMETHEUS_URL", default="").strip().rstrip("/")
if PROMETHEUS_URL:
    PROMETHEUS_URL = env_http_url("PROMETHEUS_URL", "").rstrip("/")
PROMETHEUS_TIMEOUT_SECONDS = env.float("PROMETHEUS_TIMEOUT_SECONDS", default=10.0)
if not 0 < PROMETHEUS_TIMEOUT_SECONDS <= 120:
    raise ImproperlyConfigured("PROMETHEUS_TIMEOUT_SECONDS must be above 0 and at most 120.")

# Billing imports (apps.billing). Uploads are kept under BILLING_UPLOAD_DIR, which the Celery
# workers must see too (a shared volume when they run on other machines).
BILLING_UPLOAD_DIR = Path(env.str("BILLING_UPLOAD_DIR", default=str(VAR_DIR / "billing-uploads")))
BILLING_UPLOAD_MAX_BYTES = env.int("BILLING_UPLOAD_MAX_BYTES", default=2 * 1024**3)
# Rejected rows kept in an import's error report (the total is always counted).
BILLING_MAX_ROW_ERRORS = env.int("BILLING_MAX_ROW_ERRORS", default=1000)
if BILLING_UPLOAD_MAX_BYTES < 1:
    raise ImproperlyConfigured("BILLING_UPLOAD_MAX_BYTES must be a positive number of bytes.")
if not 1 <= BILLING_MAX_ROW_ERRORS <= 100_000:
    raise ImproperlyConfigured("BILLING_MAX_ROW_ERRORS must be between 1 and 100000.")

OPSDASH_REQUIRE_SERVICES = env.bool("OPSDASH_REQUIRE_SERVICES", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
