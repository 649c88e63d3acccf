"""Django settings, read from the environment.

With nothing set, Nexus runs on the embedded default: SQLite, a local-memory cache,
the in-memory channel layer and eager Celery. DATABASE_URL, REDIS_URL and
CELERY_BROKER_URL switch to PostgreSQL, Redis and real Celery workers.
"""

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from nexus.engine.env import Env, EnvError
from nexus.settings.secrets import load_or_create_secret

env = Env()
BASE_DIR = Path(__file__).resolve().parent.parent.parent

try:
    # Core
    DEBUG = env.bool("NEXUS_DEBUG", False)
    DATA_DIR = Path(env.str("NEXUS_DATA_DIR", str(BASE_DIR / "var")))
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    SECRET_KEY = env.secret("NEXUS_SECRET_KEY") or load_or_create_secret(
        DATA_DIR / "secret_key", 50
    )
    ALLOWED_HOSTS = env.list("NEXUS_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
    CSRF_TRUSTED_ORIGINS = env.list("NEXUS_CSRF_TRUSTED_ORIGINS")
    # Serve /static/ from the gateway process; turn off behind a web server or CDN
    # that serves the output of `manage.py collectstatic`.
    NEXUS_SERVE_STATIC = env.bool("NEXUS_SERVE_STATIC", True)

    # Database: SQLite in the data directory unless DATABASE_URL is set
    DATABASE_URL = env.str("DATABASE_URL")
    if DATABASE_URL:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    else:
        DATABASES = {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": DATA_DIR / "nexus.sqlite3",
                "OPTIONS": {
                    "transaction_mode": "IMMEDIATE",
                    "timeout": 20,
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                },
                "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
            }
        }

    # Cache and shared counters: Redis when REDIS_URL is set, local memory otherwise
    REDIS_URL = env.str("REDIS_URL")
    if REDIS_URL:
        CACHES = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": "nexus",
            }
        }
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [REDIS_URL]},
            }
        }
    else:
        CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        }
        CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
        }

    # Celery: eager in the embedded default
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
    CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
    CELERY_TASK_EAGER_PROPAGATES = True
    CELERY_RESULT_BACKEND = None
    CELERY_TASK_IGNORE_RESULT = True
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
    CELERY_TIMEZONE = "UTC"
    CELERY_BEAT_SCHEDULE = {
        "quotas-usage-rollup": {
            "task": "apps.quotas.tasks.rollup_usage_task",
            "schedule": crontab(minute=5),
        },
    }

    # Credential vault: key ring "id:base64-32-bytes,..." and the id used for new writes
    NEXUS_VAULT_KEYS = env.secret("NEXUS_VAULT_KEYS")
    NEXUS_VAULT_ACTIVE_KEY = env.str("NEXUS_VAULT_ACTIVE_KEY")
    if not NEXUS_VAULT_KEYS:
        NEXUS_VAULT_KEYS = "local:" + load_or_create_secret(
            DATA_DIR / "vault_key", 32, encoding="base64"
        )
        NEXUS_VAULT_ACTIVE_KEY = NEXUS_VAULT_ACTIVE_KEY or "local"

    # Virtual keys: HMAC-SHA256 secret for the stored key digests
    NEXUS_KEY_HASH_SECRET = env.secret(
        "NEXUS_KEY_HASH_SECRET"
    ) or load_or_create_secret(DATA_DIR / "key_hash_secret", 32)

    # Traffic limits
    NEXUS_MAX_REQUEST_BYTES = env.int(
        "NEXUS_MAX_REQUEST_BYTES", 32 * 1024 * 1024, minimum=1024
    )
    NEXUS_MAX_HEADER_BYTES = env.int("NEXUS_MAX_HEADER_BYTES", 32 * 1024, minimum=1024)
    NEXUS_REQUEST_BODY_TIMEOUT = env.float(
        "NEXUS_REQUEST_BODY_TIMEOUT", 30.0, minimum=0.1
    )
    NEXUS_UPSTREAM_CONNECT_TIMEOUT = env.float(
        "NEXUS_UPSTREAM_CONNECT_TIMEOUT", 10.0, minimum=0.1
    )
    NEXUS_UPSTREAM_TIMEOUT = env.float("NEXUS_UPSTREAM_TIMEOUT", 600.0, minimum=0.1)
    NEXUS_UPSTREAM_POOL_SIZE = env.int("NEXUS_UPSTREAM_POOL_SIZE", 512, minimum=1)

    # Config snapshot: the fallback poll period when pub/sub messages are lost
    NEXUS_CONFIG_POLL_SECONDS = env.float(
        "NEXUS_CONFIG_POLL_SECONDS", 1.0, minimum=0.05
    )

    # Routing: circuit breaker thresholds, rolling window and the health sync period
    NEXUS_ROUTING_BREAKER_FAILURES = env.int(
        "NEXUS_ROUTING_BREAKER_FAILURES", 5, minimum=1
    )
    NEXUS_ROUTING_BREAKER_ERROR_RATE = env.float(
        "NEXUS_ROUTING_BREAKER_ERROR_RATE", 0.5, minimum=0.01
    )
    if NEXUS_ROUTING_BREAKER_ERROR_RATE > 1:
        raise EnvError("NEXUS_ROUTING_BREAKER_ERROR_RATE must be at most 1.")
    NEXUS_ROUTING_BREAKER_MIN_REQUESTS = env.int(
        "NEXUS_ROUTING_BREAKER_MIN_REQUESTS", 10, minimum=1
    )
    NEXUS_ROUTING_BREAKER_COOLDOWN_SECONDS = env.float(
        "NEXUS_ROUTING_BREAKER_COOLDOWN_SECONDS", 30.0, minimum=0.01
    )
    NEXUS_ROUTING_BREAKER_MAX_COOLDOWN_SECONDS = env.float(
        "NEXUS_ROUTING_BREAKER_MAX_COOLDOWN_SECONDS", 300.0, minimum=0.01
    )
    NEXUS_ROUTING_WINDOW_SECONDS = env.float(
        "NEXUS_ROUTING_WINDOW_SECONDS", 60.0, minimum=1.0
    )
    NEXUS_ROUTING_HEALTH_SYNC_SECONDS = env.float(
        "NEXUS_ROUTING_HEALTH_SYNC_SECONDS", 0.5, minimum=0.05
    )

    # Audit: batch size and flush period of the background writer
    NEXUS_AUDIT_BATCH_SIZE = env.int("NEXUS_AUDIT_BATCH_SIZE", 500, minimum=1)
    NEXUS_AUDIT_FLUSH_SECONDS = env.float(
        "NEXUS_AUDIT_FLUSH_SECONDS", 0.5, minimum=0.01
    )
    NEXUS_AUDIT_LINGER_SECONDS = env.float(
        "NEXUS_AUDIT_LINGER_SECONDS", 0.05, minimum=0.0
    )
    NEXUS_AUDIT_QUEUE_SIZE = env.int("NEXUS_AUDIT_QUEUE_SIZE", 100_000, minimum=100)

    # Responses API: seconds a stored response stays available to previous_response_id
    NEXUS_RESPONSES_TTL_SECONDS = env.int(
        "NEXUS_RESPONSES_TTL_SECONDS", 24 * 3600, minimum=60
    )

    # Spill store for captured bodies past the first 256 KiB: a directory, or an
    # S3-compatible bucket through django-storages when NEXUS_SPILL_S3_BUCKET is set
    NEXUS_SPILL_DIR = Path(env.str("NEXUS_SPILL_DIR", str(DATA_DIR / "spill")))
    NEXUS_SPILL_S3_BUCKET = env.str("NEXUS_SPILL_S3_BUCKET")
    NEXUS_SPILL_S3_ENDPOINT_URL = env.str("NEXUS_SPILL_S3_ENDPOINT_URL")
    NEXUS_SPILL_S3_REGION = env.str("NEXUS_SPILL_S3_REGION")
    NEXUS_SPILL_S3_ACCESS_KEY_ID = env.secret("NEXUS_SPILL_S3_ACCESS_KEY_ID")
    NEXUS_SPILL_S3_SECRET_ACCESS_KEY = env.secret("NEXUS_SPILL_S3_SECRET_ACCESS_KEY")

    # Quotas: outage default (open or closed), output estimate, Redis timeouts, alert queue
    NEXUS_QUOTA_FAIL_MODE = env.str("NEXUS_QUOTA_FAIL_MODE", "open")
    if NEXUS_QUOTA_FAIL_MODE not in ("open", "closed"):
        raise EnvError(
            f"NEXUS_QUOTA_FAIL_MODE must be open or closed, got {NEXUS_QUOTA_FAIL_MODE!r}."
        )
    NEXUS_QUOTA_DEFAULT_OUTPUT_TOKENS = env.int(
        "NEXUS_QUOTA_DEFAULT_OUTPUT_TOKENS", 1024, minimum=1
    )
    NEXUS_QUOTA_REDIS_TIMEOUT = env.float(
        "NEXUS_QUOTA_REDIS_TIMEOUT", 0.5, minimum=0.01
    )
    NEXUS_QUOTA_REDIS_RETRY_SECONDS = env.float(
        "NEXUS_QUOTA_REDIS_RETRY_SECONDS", 1.0, minimum=0.05
    )
    NEXUS_QUOTA_ALERT_QUEUE = env.str("NEXUS_QUOTA_ALERT_QUEUE", "celery")

    # Response cache: vector index servers (default DATABASE_URL and REDIS_URL) and
    # the entry bound of the in-process exact store and numpy index
    NEXUS_CACHE_PGVECTOR_URL = env.secret("NEXUS_CACHE_PGVECTOR_URL")
    NEXUS_CACHE_REDIS_SEARCH_URL = env.secret("NEXUS_CACHE_REDIS_SEARCH_URL")
    NEXUS_CACHE_MEMORY_MAX_ENTRIES = env.int(
        "NEXUS_CACHE_MEMORY_MAX_ENTRIES", 10_000, minimum=1
    )

    # OpenID Connect single sign-on (mozilla-django-oidc): on when OIDC_RP_CLIENT_ID
    # is set; the code flow always uses PKCE (S256), state and nonce
    OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID")
    OIDC_RP_CLIENT_SECRET = env.secret("OIDC_RP_CLIENT_SECRET")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT")
    OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", "RS256")
    OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", "openid email profile")
    OIDC_TOKEN_USE_BASIC_AUTH = env.bool("OIDC_TOKEN_USE_BASIC_AUTH", False)
    OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", 10.0, minimum=0.1)
    OIDC_USE_NONCE = True
    OIDC_USE_PKCE = True
    OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
    NEXUS_OIDC_ISSUER = env.str("NEXUS_OIDC_ISSUER")
    NEXUS_OIDC_GROUPS_CLAIM = env.str("NEXUS_OIDC_GROUPS_CLAIM", "groups")
    NEXUS_OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
    _oidc_missing = [
        name
        for name in (
            "OIDC_RP_CLIENT_SECRET",
            "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "OIDC_OP_TOKEN_ENDPOINT",
            "OIDC_OP_USER_ENDPOINT",
            "OIDC_OP_JWKS_ENDPOINT",
            "NEXUS_OIDC_ISSUER",
        )
        if not globals()[name]
    ]
    if NEXUS_OIDC_ENABLED and _oidc_missing:
        raise EnvError(
            f"OIDC_RP_CLIENT_ID is set, so single sign-on also needs "
            f"{', '.join(_oidc_missing)}."
        )

    # SCIM 2.0 provisioning: the largest page a list or search returns
    NEXUS_SCIM_MAX_RESULTS = env.int("NEXUS_SCIM_MAX_RESULTS", 200, minimum=1)
except EnvError as exc:
    raise ImproperlyConfigured(str(exc)) from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.tenancy",
    "apps.keys",
    "apps.providers",
    "apps.audit",
    "apps.gateway",
    "apps.iam",
    "apps.api",
    "apps.quotas",
    "apps.hooks",
    "apps.compliance",
    "apps.routing",
    "apps.cache",
    "apps.sso",
    "apps.scim",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Password logins, then OpenID Connect logins (apps.sso)
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "apps.sso.backends.OidcBackend",
]

ROOT_URLCONF = "nexus.urls"
ASGI_APPLICATION = "nexus.asgi.application"
WSGI_APPLICATION = None

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
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# REST API: service tokens first, so an anonymous request gets 401 with WWW-Authenticate
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.api.authentication.ServiceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.api.pagination.LimitOffset",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.api.exceptions.api_exception_handler",
}

# OpenAPI schema and docs, served with the bundled Swagger UI and Redoc (no CDN)
SPECTACULAR_SETTINGS = {
    "TITLE": "Nexus control plane API",
    "DESCRIPTION": "Organizations, projects, access control, virtual keys, providers and audit.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.api.schema.add_error_responses",
    ],
}

# SCIM 2.0 (django-scim2): Nexus models, adapters and per-organization bearer tokens
SCIM_SERVICE_PROVIDER = {
    "USER_MODEL_GETTER": "apps.scim.models.get_scim_user_model",
    "USER_ADAPTER": "apps.scim.adapters.ScimUserAdapter",
    "GROUP_MODEL": "apps.scim.models.ScimGroup",
    "GROUP_ADAPTER": "apps.scim.adapters.ScimGroupAdapter",
    "USER_FILTER_PARSER": "apps.scim.filters.UserFilterQuery",
    "GROUP_FILTER_PARSER": "apps.scim.filters.GroupFilterQuery",
    "SERVICE_PROVIDER_CONFIG_MODEL": "apps.scim.schemas.ServiceProviderConfig",
    "BASE_LOCATION_GETTER": "apps.scim.scoping.base_location",
    "GET_EXTRA_MODEL_FILTER_KWARGS_GETTER": "apps.scim.scoping.organization_filter",
    "AUTH_CHECK_MIDDLEWARE": "apps.scim.auth.ScimTokenMiddleware",
    "SCHEMAS_GETTER": "apps.scim.schemas.all_schemas",
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A per-organization SCIM token sent as Authorization: Bearer.",
            "primary": True,
        }
    ],
    "WWW_AUTHENTICATE_HEADER": 'Bearer realm="nexus-scim"',
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("NEXUS_LOG_LEVEL", "INFO")},
}
