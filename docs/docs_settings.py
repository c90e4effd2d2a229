"""Django settings used to build (and doctest) the documentation.

An in-memory SQLite database shared by every thread of the process (the worker
examples drive jobs from threads), the admin for ``container_manager.admin``, and
a mock-friendly ``CONTAINER_MANAGER`` with the defaults.
"""

SECRET_KEY = "docs-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "container_manager",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # A named shared-cache in-memory database: every connection of the process
        # (one per thread) sees the same tables; Django never closes it.
        "NAME": "file:container_manager_docs?mode=memory&cache=shared",
        "TEST": {"NAME": "file:container_manager_docs?mode=memory&cache=shared"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = None

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
