"""Django app configuration for container_manager."""

from django.apps import AppConfig


class ContainerManagerConfig(AppConfig):
    """App config: registers the system checks on start-up.

    Example:
        >>> from django.apps import apps
        >>> apps.get_app_config("container_manager").verbose_name
        'Container manager'
    """

    name = "container_manager"
    verbose_name = "Container manager"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks; on Django 6, connect the task signals to the lifecycle.

        Example:
            >>> from django.apps import apps
            >>> from django.core.checks import registry
            >>> from container_manager.checks import check_settings
            >>> apps.get_app_config("container_manager").ready()
            >>> check_settings in registry.registry.registered_checks
            True
        """
        import django

        from container_manager import checks, task_signals  # noqa: F401

        if django.VERSION >= (6, 0):  # django.tasks exists
            from container_manager.tasks import on_job_moved

            task_signals.connect(on_job_moved)
