"""Django system checks for the ``CONTAINER_MANAGER`` setting and the task backends' hosts."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

from container_manager.conf import settings_problems


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Report unknown keys and invalid values in ``settings.CONTAINER_MANAGER``.

    Args:
        app_configs: The app configs being checked (unused).
        **kwargs: Other arguments Django passes to checks.

    Returns:
        One ``container_manager.E001`` error per unknown key and one
        ``container_manager.E002`` error per invalid value.

    Example:
        >>> from django.test import override_settings
        >>> with override_settings(CONTAINER_MANAGER={"POLL_INTERVALL": 1}):
        ...     [e.id for e in check_settings()]
        ['container_manager.E001']
    """
    errors = []
    for problem in settings_problems(getattr(settings, "CONTAINER_MANAGER", {}) or {}):
        error_id = "container_manager.E001" if problem.startswith("Unknown key") else (
            "container_manager.E002"
        )
        errors.append(
            Error(problem, hint="See the Settings reference in the docs.", id=error_id)
        )
    return errors


@register(Tags.database)
def check_task_hosts(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Error]:
    """Report task backends whose ``host`` or ``environment_template`` does not exist.

    A database check: Django runs it for ``manage.py check --database default``
    (and not at every start, so that ``migrate`` works before the hosts exist).
    Only on Django 6, for each :class:`~container_manager.tasks.ContainerTaskBackend`
    in ``TASKS``, in its default options and in every queue's.

    Args:
        app_configs: The app configs being checked (unused).
        databases: The database aliases to check; nothing is checked without one.
        **kwargs: Other arguments Django passes to checks.

    Returns:
        One ``container_manager.E014`` error per missing host or template.

    Example:
        >>> check_task_hosts(databases=["default"])[0].msg
        "TASKS['default']['OPTIONS']['host']: there is no ExecutorHost named 'tasks-mock'."
        >>> host = ExecutorHost.objects.create(
        ...     name="tasks-mock", executor_type="mock", connection_string="mock://c")
        >>> check_task_hosts(databases=["default"])
        []
    """
    if not databases:
        return []
    try:
        from django.tasks import task_backends

        from container_manager.tasks import ContainerTaskBackend, options_problems
    except ImportError:  # Django 5.2: no task backends
        return []
    from django.db import DatabaseError

    from container_manager.models import EnvironmentVariableTemplate, ExecutorHost

    errors = []
    for alias in task_backends.settings:
        backend = task_backends[alias]
        if not isinstance(backend, ContainerTaskBackend) or options_problems(
            alias, backend.params
        ):
            continue  # invalid options are reported by the backend's own check
        sets = [((), backend.options)] + [
            (("queues", name), values) for name, values in backend.options.get("queues", {}).items()
        ]
        for path, values in sets:
            for key, model, label in (("host", ExecutorHost, "ExecutorHost"),
                                      ("environment_template", EnvironmentVariableTemplate,
                                       "EnvironmentVariableTemplate")):
                name = values.get(key)
                if not name:
                    continue
                try:
                    exists = model.objects.filter(name=name).exists()
                except DatabaseError:  # tables not migrated yet
                    return errors
                if not exists:
                    where = f"TASKS[{alias!r}]['OPTIONS']" + "".join(
                        f"[{p!r}]" for p in (*path, key))
                    errors.append(Error(
                        f"{where}: there is no {label} named {name!r}.",
                        hint=f"Create the {label} (admin, or {label}.objects.create()) or fix "
                        "the setting.",
                        id="container_manager.E014",
                    ))
    return errors
