"""The task-backend suites need Django 6 (django.tasks); on Django 5.2 each module is skipped, saying so."""

import django
import pytest

NEEDS_DJANGO_6 = (
    f"django.tasks (the task backend) needs Django 6.0 or later; this is Django "
    f"{django.get_version()} (tests/unit/test_tasks_django52.py covers 5.2)"
)


class _SkippedModule(pytest.Module):
    """A test module that is not imported (it imports django.tasks) and is reported as skipped."""

    def _getobj(self):
        pytest.skip(NEEDS_DJANGO_6, allow_module_level=True)


if django.VERSION < (6, 0):

    def pytest_pycollect_makemodule(module_path, parent):
        return _SkippedModule.from_parent(parent, path=module_path)
