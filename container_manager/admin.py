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
    """Admin for executor hosts, with a health-check action."""

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
    """Admin for environment variable templates."""

    list_display = ("name", "description", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("created_at", "updated_at")


class ContainerExecutionInline(admin.TabularInline):
    """A job's executions, shown read-only on the job page."""

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
        """
        return False


@admin.register(ContainerJob)
class ContainerJobAdmin(admin.ModelAdmin):
    """Admin for jobs, with the executions inline and a cancel action."""

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
        """
        done = sum(1 for job in queryset if job.cancel())
        self.message_user(request, f"Cancelled {done} job(s).", messages.SUCCESS)


@admin.register(ContainerExecution)
class ContainerExecutionAdmin(admin.ModelAdmin):
    """Admin for executions (read-only: they record what happened)."""

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
        """
        return False
