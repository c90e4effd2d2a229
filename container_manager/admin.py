"""Django admin for the four container_manager models."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from container_manager.models import (
    ContainerExecution,
    ContainerJob,
    EnvironmentVariableTemplate,
    ExecutorHost,
)


@admin.register(ExecutorHost)
class ExecutorHostAdmin(admin.ModelAdmin):
    """Admin for executor hosts, with a health-check action.

    Example:
        >>> from django.contrib import admin
        >>> type(admin.site._registry[ExecutorHost]).__name__
        'ExecutorHostAdmin'
    """

    list_display = (
        "name", "executor_type", "connection_string", "is_active", "max_concurrent_jobs",
        "last_health_check_ok", "last_health_check_at",
    )
    list_filter = ("executor_type", "is_active", "last_health_check_ok")
    search_fields = ("name", "connection_string")
    readonly_fields = ("created_at", "updated_at", "last_health_check_at",
                       "last_health_check_ok", "last_health_check_detail")
    actions = ["run_health_check"]

    @admin.action(description="Run a health check on the selected hosts")
    def run_health_check(self, request: HttpRequest, queryset: QuerySet[ExecutorHost]) -> None:
        """Check each selected host and report the results.

        Args:
            request: The admin request.
            queryset: The selected hosts.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.messages.storage.cookie import CookieStorage
            >>> from django.test import RequestFactory
            >>> request = RequestFactory().post("/admin/")
            >>> request._messages = CookieStorage(request)
            >>> host = ExecutorHost.objects.create(
            ...     name="admin-mock", executor_type="mock", connection_string="mock://admin")
            >>> admin.site._registry[ExecutorHost].run_health_check(
            ...     request, ExecutorHost.objects.filter(pk=host.pk))
            >>> [str(m) for m in request._messages]
            ['admin-mock: healthy (mock executor)']
        """
        for host in queryset:
            ok = host.health_check()
            level = messages.SUCCESS if ok else messages.ERROR
            self.message_user(
                request, f"{host.name}: {'healthy' if ok else 'unhealthy'} "
                f"({host.last_health_check_detail})", level
            )


@admin.register(EnvironmentVariableTemplate)
class EnvironmentVariableTemplateAdmin(admin.ModelAdmin):
    """Admin for environment variable templates.

    Example:
        >>> from django.contrib import admin
        >>> admin.site._registry[EnvironmentVariableTemplate].search_fields
        ('name', 'description')
    """

    list_display = ("name", "description", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("created_at", "updated_at")


class ContainerExecutionInline(admin.TabularInline):
    """A job's executions, shown read-only on the job page.

    Example:
        >>> ContainerExecutionInline.model is ContainerExecution, ContainerExecutionInline.can_delete
        (True, False)
    """

    model = ContainerExecution
    extra = 0
    can_delete = False
    fields = ("attempt", "status", "container_id", "exit_code", "started_at", "finished_at",
              "error_message")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Executions are created by launches only.

        Args:
            request: The admin request.
            obj: The parent job.

        Returns:
            Always False.

        Example:
            >>> from django.contrib import admin
            >>> ContainerExecutionInline(ContainerJob, admin.site).has_add_permission(request=None)
            False
        """
        return False


@admin.register(ContainerJob)
class ContainerJobAdmin(admin.ModelAdmin):
    """Admin for jobs, with the executions inline and a cancel action.

    Example:
        >>> from django.contrib import admin
        >>> admin.site._registry[ContainerJob].actions
        ['cancel_jobs']
    """

    list_display = ("id", "name", "image", "status", "docker_host", "priority", "exit_code",
                    "created_at", "finished_at")
    list_filter = ("status", "docker_host")
    search_fields = ("name", "image", "command", "status_message")
    readonly_fields = ("status", "status_message", "exit_code", "attempts", "claimed_by",
                       "lease_expires_at", "created_at", "updated_at", "started_at",
                       "finished_at")
    list_select_related = ("docker_host",)
    inlines = [ContainerExecutionInline]
    actions = ["cancel_jobs"]

    @admin.action(description="Cancel the selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[ContainerJob]) -> None:
        """Cancel each selected job that is not terminal yet.

        Args:
            request: The admin request.
            queryset: The selected jobs.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.messages.storage.cookie import CookieStorage
            >>> from django.test import RequestFactory
            >>> request = RequestFactory().post("/admin/")
            >>> request._messages = CookieStorage(request)
            >>> host = ExecutorHost.objects.create(
            ...     name="admin-cancel", executor_type="mock", connection_string="mock://ac")
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> admin.site._registry[ContainerJob].cancel_jobs(request, ContainerJob.objects.all())
            >>> [str(m) for m in request._messages], ContainerJob.objects.get(pk=job.pk).status
            (['Cancelled 1 job(s).'], 'cancelled')
        """
        done = sum(1 for job in queryset if job.cancel())
        self.message_user(request, f"Cancelled {done} job(s).", messages.SUCCESS)


@admin.register(ContainerExecution)
class ContainerExecutionAdmin(admin.ModelAdmin):
    """Admin for executions (read-only: they record what happened).

    Example:
        >>> from django.contrib import admin
        >>> admin.site._registry[ContainerExecution].has_change_permission(request=None)
        False
    """

    list_display = ("id", "job", "attempt", "status", "container_id", "exit_code",
                    "started_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("container_id", "error_message")
    list_select_related = ("job",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Executions are read-only in the admin.

        Args:
            request: The admin request.
            obj: The execution.

        Returns:
            Always False.

        Example:
            >>> from django.contrib import admin
            >>> admin.site._registry[ContainerExecution].has_change_permission(request=None, obj=None)
            False
        """
        return False
