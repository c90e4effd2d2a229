"""Django system checks for the ``CONTAINER_MANAGER`` setting."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

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
