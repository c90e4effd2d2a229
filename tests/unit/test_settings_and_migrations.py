import io

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from container_manager.checks import check_settings
from container_manager.conf import ContainerManagerSettings, get_settings


def test_defaults_when_unset():
    with override_settings(CONTAINER_MANAGER=None):
        assert get_settings() == ContainerManagerSettings()


def test_override_applies():
    with override_settings(CONTAINER_MANAGER={"LOG_MAX_BYTES": 5, "RETRY_ON_EXIT_CODES": [1, 2]}):
        cfg = get_settings()
    assert cfg.LOG_MAX_BYTES == 5 and cfg.RETRY_ON_EXIT_CODES == (1, 2)


def test_settings_are_read_again_whenever_they_change(settings):
    with override_settings(CONTAINER_MANAGER={"LOG_MAX_BYTES": 5}):
        first = get_settings()
        assert get_settings() is first  # unchanged: checked once, the same object
        with override_settings(CONTAINER_MANAGER={"LOG_MAX_BYTES": 6}):
            assert get_settings().LOG_MAX_BYTES == 6
        assert get_settings().LOG_MAX_BYTES == 5
        # A valid value read before does not hide an invalid one that replaces it.
        with override_settings(CONTAINER_MANAGER={"LOG_MAX_BYTES": 5, "RETRY_ON_OOM": 1}):
            with pytest.raises(ImproperlyConfigured, match="must be bool, not int"):
                get_settings()
    settings.CONTAINER_MANAGER = {"LEASE_SECONDS": 9}  # pytest-django's settings fixture
    assert get_settings().LEASE_SECONDS == 9
    settings.CONTAINER_MANAGER = {"LEASE_SECONDS": 10}
    assert get_settings().LEASE_SECONDS == 10


@pytest.mark.parametrize(
    "value,error_id,text",
    [
        ({"LOG_MAX_BYTE": 1}, "container_manager.E001", "Unknown key 'LOG_MAX_BYTE'"),
        ({"POLL_INTERVAL": "1"}, "container_manager.E002", "must be a number, not str"),
        ({"RETRY_ON_OOM": 1}, "container_manager.E002", "must be bool, not int"),
        ({"WORKER_CONCURRENCY": True}, "container_manager.E002", "must be a whole number, not bool"),
        ({"WORKER_CONCURRENCY": 0}, "container_manager.E002", "must be a whole number from 1 to 256"),
        ({"WORKER_CONCURRENCY": 10**9}, "container_manager.E002", "from 1 to 256"),
        ({"POLL_INTERVAL": float("nan")}, "container_manager.E002", "must be a finite number"),
        ({"POLL_INTERVAL": 0}, "container_manager.E002", "from 0.01 to 3600"),
        ({"RETRY_BACKOFF_SECONDS": float("inf")}, "container_manager.E002", "must be a finite number"),
        ({"LEASE_SECONDS": 10**30}, "container_manager.E002", "from 1 to 86400"),
        ({"RETRY_ON_EXIT_CODES": ["1"]}, "container_manager.E002", "must list exit codes"),
        ({"RETRY_ON_EXIT_CODES": [2**70]}, "container_manager.E002", "must list exit codes"),
        ("not a dict", "container_manager.E002", "must be a dict"),
    ],
)
def test_system_check_names_the_problem(value, error_id, text):
    with override_settings(CONTAINER_MANAGER=value):
        errors = check_settings()
        assert [e.id for e in errors] == [error_id]
        assert text in errors[0].msg
        with pytest.raises(ImproperlyConfigured, match=text.split(" ")[0]):
            get_settings()


@pytest.mark.django_db
def test_system_check_runs_through_django():
    out = io.StringIO()
    with override_settings(CONTAINER_MANAGER={"NOPE": 1}):
        with pytest.raises(Exception, match="container_manager.E001"):
            call_command("check", stdout=out, stderr=out)


@pytest.mark.django_db
def test_migrations_are_complete():
    out = io.StringIO()
    call_command("makemigrations", "container_manager", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
