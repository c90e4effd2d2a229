"""Django settings for the test suite: in-memory SQLite unless CM_TEST_POSTGRES_DSN is set."""

import json
import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",  # the admin's CSS and JS for the browser tests' server
    "container_manager",
]
STATIC_URL = "/static/"
# The admin browser tests run `runserver` on 127.0.0.1 with these settings (DEBUG is off).
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
ROOT_URLCONF = "tests.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}


def _postgres(dsn):
    """Django database settings for a ``postgresql://user@host:port/name?host=/socket/dir`` URL."""
    from urllib.parse import parse_qs, unquote, urlsplit

    url = urlsplit(dsn)
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(url.path.lstrip("/")) or "postgres",
        "USER": unquote(url.username or "postgres"),
        "PASSWORD": unquote(url.password or ""),
        "HOST": query.pop("host", url.hostname or ""),
        "PORT": str(query.pop("port", url.port or "")),
        "CONN_MAX_AGE": None,
        "OPTIONS": query,
    }


# The fleet tests run workers as subprocesses against a PostgreSQL database made by
# tests/plugins/postgres_server.py; they pass it here. A file SQLite database
# (CM_TEST_SQLITE_PATH) serves the same purpose for the benchmarks.
if os.environ.get("CM_TEST_POSTGRES_DSN"):
    DATABASES = {"default": _postgres(os.environ["CM_TEST_POSTGRES_DSN"])}
    # More OPTIONS as a JSON object (benchmarks: {"prepare_threshold": 5}).
    DATABASES["default"]["OPTIONS"].update(
        json.loads(os.environ.get("CM_TEST_POSTGRES_OPTIONS") or "{}"))
    # More top-level keys as a JSON object (tests: {"DISABLE_SERVER_SIDE_CURSORS": true}).
    DATABASES["default"].update(json.loads(os.environ.get("CM_TEST_POSTGRES_DATABASE") or "{}"))
elif os.environ.get("CM_TEST_SQLITE_PATH"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["CM_TEST_SQLITE_PATH"],
            # WAL lets readers and one writer work at once (several worker threads).
            "OPTIONS": {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A django.tasks backend that runs tasks in containers (Django 6; ignored by Django 5.2).
TASKS = {
    "default": {
        "BACKEND": "container_manager.tasks.ContainerTaskBackend",
        "QUEUES": ["default", "heavy"],
        "OPTIONS": {
            "host": "tasks-mock",
            "image": "myapp:latest",
            "queues": {"heavy": {"memory_limit": 1024}},
        },
    }
}
CONTAINER_MANAGER = {"RETRY_BACKOFF_SECONDS": 0.01, "POLL_INTERVAL": 0.05, "STOP_GRACE_SECONDS": 2}
# Overrides for worker subprocesses (fleet tests, benchmarks), as a JSON object.
CONTAINER_MANAGER.update(json.loads(os.environ.get("CM_TEST_CONTAINER_MANAGER") or "{}"))
# Tests only: a fast hasher, so that each admin test's login costs milliseconds, not ~0.5 s.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
