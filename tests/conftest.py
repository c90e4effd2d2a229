"""Shared pytest configuration for the test suite.

Integration plugins (a real Docker engine, a real PostgreSQL server) live in
``tests/plugins`` and are listed in ``pytest_plugins`` below.
"""

pytest_plugins: list[str] = [
    "tests.plugins.docker_engine",
    "tests.plugins.postgres_server",
    "tests.plugins.prometheus_server",
    "tests.plugins.task_image",
]
