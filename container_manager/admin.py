"""Django admin for the four container_manager models.

Permissions: the actions (cancel jobs, run health checks) need the ``change``
permission of their model; users without it neither see them nor can POST
them. Environment values (a template's text, a job's overrides) are shown only
to users who may change the object; everyone else sees the keys with the
values masked (``KEY=********``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from container_manager import operations
from container_manager.envfile import mask_env_text
from container_manager.executors import ExecutorError
from container_manager.jsonvalues import MAX_JSON_DEPTH, json_depth_exceeds
from container_manager.lifecycle import (
    ConcurrentTransitionError,
    InvalidTransitionError,
    JobStatus,
)
from container_manager.models import (
    ContainerExecution,
    ContainerJob,
    EnvironmentVariableTemplate,
    ExecutorHost,
)

#: The colour of each job status in the jobs list (CSS colours, readable on white and dark).
STATUS_COLOURS: dict[str, str] = {
    JobStatus.PENDING.value: "#6c757d",
    JobStatus.STARTING.value: "#0b6fb8",
    JobStatus.RUNNING.value: "#0b6fb8",
    JobStatus.COMPLETED.value: "#1e7b34",
    JobStatus.FAILED.value: "#c62828",
    JobStatus.CANCELLED.value: "#9a6700",
}


def status_badge(status: str) -> str:
    """The status as a coloured label (HTML) for the admin pages.

    Args:
        status: A job or execution status.

    Returns:
        Safe HTML: a ``<span class="cm-status cm-status-<status>">`` in the status's colour.

    Example:
        >>> status_badge("failed")
        '<span class="cm-status cm-status-failed" style="background:#c62828">failed</span>'
    """
    return format_html(
        '<span class="cm-status cm-status-{}" style="background:{}">{}</span>',
        status, STATUS_COLOURS.get(status, "#6c757d"), status,
    )


#: At most this many characters of each stream are shown per attempt (its end); the page says so.
LOG_DISPLAY_CHARS = 20_000

#: How often a job page asks for the job's status while the job is not finished (milliseconds).
LIVE_POLL_MS = 1000

#: How many of a host's latest jobs its page lists.
HOST_RECENT_JOBS = 20


def shown_log(text: str, limit: int = LOG_DISPLAY_CHARS) -> tuple[str, str]:
    """The part of a log the job page shows (its end), and a note when it is not all of it.

    Args:
        text: One stream of an attempt.
        limit: The most characters shown.

    Returns:
        ``(shown text, note)``; the note is empty when all of the text is shown.

    Example:
        >>> shown_log("short")
        ('short', '')
        >>> shown_log("abcdef", limit=2)
        ('ef', 'Showing the last 2 of 6 characters.')
    """
    if len(text) <= limit:
        return text, ""
    return text[-limit:], f"Showing the last {limit:,} of {len(text):,} characters."


def _seconds(duration: Any) -> str:
    """A duration for people ("12.3 s"), or "-"."""
    return "-" if duration is None else f"{duration.total_seconds():.1f} s"


def attempt_data(job: ContainerJob, execution: ContainerExecution) -> dict[str, Any]:
    r"""What the job page shows of one attempt (also the live view's JSON).

    Its logs are :func:`container_manager.operations.attempt_logs` (live while it
    runs), each stream cut by :func:`shown_log`.

    Args:
        job: The job.
        execution: One of its attempts.

    Returns:
        A JSON-ready dict: attempt, status, colour, exit_code, duration, container_id,
        error_message, stdout, stdout_note, stderr, stderr_note.

    Example:
        >>> host = mock_host("ad-mock", logs="hi\n")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> job.launch() and job.harvest()
        True
        >>> data = attempt_data(job, job.containerexecution_set.get())
        >>> data["attempt"], data["status"], data["exit_code"], data["stdout"], data["stderr_note"]
        (1, 'completed', 0, 'hi\n', '')
    """
    logs = operations.attempt_logs(job, execution)
    stdout, stdout_note = shown_log(logs.stdout)
    stderr, stderr_note = shown_log(logs.stderr)
    return {
        "attempt": execution.attempt,
        "status": execution.status,
        "colour": STATUS_COLOURS.get(execution.status, "#6c757d"),
        "exit_code": execution.exit_code,
        "duration": _seconds(execution.duration),
        "container_id": execution.container_id,
        "error_message": execution.error_message,
        "stdout": stdout,
        "stdout_note": stdout_note,
        "stderr": stderr,
        "stderr_note": stderr_note,
    }


def job_data(job: ContainerJob) -> dict[str, Any]:
    """What the job page shows of a job's progress: its status and its attempts, in order.

    Reads the live logs of a running attempt from its executor: never call it
    inside a transaction.

    Args:
        job: The job.

    Returns:
        A JSON-ready dict: id, status, colour, status_message, exit_code, terminal, and
        ``attempts`` (:func:`attempt_data` for each, first attempt first).

    Example:
        >>> host = mock_host("jd-mock")  # doctest setup: a saved mock host
        >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
        >>> job_data(job)["status"], job_data(job)["terminal"], job_data(job)["attempts"]
        ('pending', False, [])
    """
    return {
        "id": job.pk,
        "status": job.status,
        "colour": STATUS_COLOURS.get(job.status, "#6c757d"),
        "status_message": job.status_message,
        "exit_code": job.exit_code,
        "terminal": job.is_terminal_status,
        "attempts": [attempt_data(job, e)
                     for e in job.containerexecution_set.order_by("attempt")],
    }


#: The page that confirms an action, listing what it will do and what it will refuse.
CONFIRM_TEMPLATE = "admin/container_manager/confirm_action.html"

_REFUSALS = (ExecutorError, ValidationError, InvalidTransitionError, ConcurrentTransitionError)


def _refusal(exc: Exception) -> str:
    """The reason an operation refused, from its exception."""
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc).rstrip(".")


def confirm_or_run(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    objects: Iterable[Any],
    *,
    action: str,
    verb: str,
    explanation: str,
    problem: Callable[[Any], str | None],
    run: Callable[[Any], str | None],
) -> TemplateResponse | None:
    """Show what an action will do and refuse (first POST), or do it and report (confirmed POST).

    The first POST of an admin action returns a confirmation page
    (:data:`CONFIRM_TEMPLATE`) listing the objects the action will change and
    those it will refuse, each with its reason. Its "Yes" button posts again with
    ``post=yes``: then each object is re-checked and ``run``; every refusal (by
    ``problem``, by ``run``, or an operation's exception) becomes a warning
    message naming the object and the reason.

    Args:
        model_admin: The admin whose action this is.
        request: The admin request.
        objects: The selected objects.
        action: The action's name (posted back by the confirmation page).
        verb: What the action does, for people ("cancel").
        explanation: What it will do, in a sentence, for the confirmation page.
        problem: Why an object would be refused, or None.
        run: Does the action to one object; returns why it refused, or None.

    Returns:
        The confirmation page, or None once the action ran (the admin then
        shows the list again, with the messages).

    Example:
        >>> from django.contrib import admin
        >>> from django.contrib.messages.storage.cookie import CookieStorage
        >>> from django.test import RequestFactory
        >>> request = RequestFactory().post("/admin/", {"post": "yes"})
        >>> request._messages = CookieStorage(request)
        >>> confirm_or_run(admin.site._registry[ContainerJob], request, [ContainerJob(pk=8, image="busybox")],
        ...                action="x", verb="poke", explanation="", run=lambda job: None,
        ...                problem=lambda job: "it is asleep")
        >>> [str(m) for m in request._messages]
        ['Refused to poke job 8: busybox (pending): it is asleep.']
    """
    objects = list(objects)
    if request.POST.get("post") != "yes":
        checked = [(obj, problem(obj)) for obj in objects]
        opts = model_admin.model._meta
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"{verb.capitalize()} the selected {opts.verbose_name_plural}?",
            "explanation": explanation,
            "verb": verb,
            "will_run": [obj for obj, reason in checked if reason is None],
            "refused": [(obj, reason) for obj, reason in checked if reason is not None],
            "queryset": objects,
            "action": action,
            "opts": opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, CONFIRM_TEMPLATE, context)
    for obj in objects:
        try:
            reason = problem(obj) or run(obj)
        except _REFUSALS as exc:
            reason = _refusal(exc)
        if reason:
            model_admin.message_user(request, f"Refused to {verb} {obj}: {reason}.",
                                     messages.WARNING)
    return None


class _BoundedJSONField(forms.JSONField):
    """A JSON form field that refuses nesting deeper than ``MAX_JSON_DEPTH`` before parsing."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and json_depth_exceeds(value, MAX_JSON_DEPTH):
            raise ValidationError(
                f"Nested more than {MAX_JSON_DEPTH} levels deep.", code="invalid"
            )
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        if isinstance(data, str) and json_depth_exceeds(data, MAX_JSON_DEPTH):
            return forms.fields.InvalidJSONInput(data)  # redisplayed as typed, never parsed
        return super().bound_data(data, initial)


class MaskedEnvironmentAdmin(admin.ModelAdmin):
    """A model admin that shows environment text masked to users who cannot change the object.

    Subclasses list ``(field, stand-in)`` pairs in :attr:`masked_fields`; the
    stand-in is a read-only display method that shows the masked text.

    Attributes:
        masked_fields: ``(field, masked read-only stand-in)`` pairs.

    Example:
        >>> from django.contrib import admin
        >>> admin.site._registry[ContainerJob].masked_fields
        (('environment_overrides', 'masked_environment_overrides'),)
    """

    masked_fields: tuple[tuple[str, str], ...] = ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """The form's fields, with masked stand-ins for users who cannot change ``obj``.

        Args:
            request: The admin request.
            obj: The object shown (None on the add page).

        Returns:
            The field names.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.auth.models import AnonymousUser
            >>> from django.test import RequestFactory
            >>> request = RequestFactory().get("/admin/")
            >>> request.user = AnonymousUser()
            >>> "masked_environment_variables" in admin.site._registry[
            ...     EnvironmentVariableTemplate].get_fields(request)
            True
        """
        fields = super().get_fields(request, obj)
        if self.has_change_permission(request, obj):
            return fields
        stand_ins = dict(self.masked_fields)
        # The stand-ins are read-only fields, already at the end of ``fields``: each once.
        return list(dict.fromkeys(stand_ins.get(f, f) for f in fields))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """The read-only fields, plus the masked stand-ins for users who cannot change ``obj``.

        Args:
            request: The admin request.
            obj: The object shown (None on the add page).

        Returns:
            The field names.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.auth.models import AnonymousUser
            >>> from django.test import RequestFactory
            >>> request = RequestFactory().get("/admin/")
            >>> request.user = AnonymousUser()
            >>> admin.site._registry[ContainerJob].get_readonly_fields(request)[-1]
            'masked_environment_overrides'
        """
        fields = list(super().get_readonly_fields(request, obj))
        if not self.has_change_permission(request, obj):
            fields += [stand_in for _, stand_in in self.masked_fields]
        return fields


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
    actions = ["run_health_check", "deactivate_hosts", "reactivate_hosts"]
    formfield_overrides = {models.JSONField: {"form_class": _BoundedJSONField}}
    change_form_template = "admin/container_manager/executorhost/change_form.html"

    def host_summary(self, host: ExecutorHost) -> dict[str, Any]:
        """What the host page shows above the form: its load, its last health check, its jobs.

        Args:
            host: The host.

        Returns:
            ``active_jobs`` (starting or running here), ``max_concurrent_jobs``,
            ``last_health_check_at`` / ``_ok`` / ``_detail``, and ``recent_jobs``
            (its latest :data:`HOST_RECENT_JOBS` jobs, newest first, each
            ``{"job", "badge"}``).

        Example:
            >>> from django.contrib import admin
            >>> host = mock_host("hs-mock", run_seconds=60)  # doctest setup: a saved mock host
            >>> ContainerJob.objects.create(image="busybox", docker_host=host).launch()
            True
            >>> summary = admin.site._registry[ExecutorHost].host_summary(host)
            >>> summary["active_jobs"], summary["max_concurrent_jobs"], len(summary["recent_jobs"])
            (1, None, 1)
        """
        return {
            "active_jobs": ContainerJob.objects.for_host(host).active().count(),
            "max_concurrent_jobs": host.max_concurrent_jobs,
            "last_health_check_at": host.last_health_check_at,
            "last_health_check_ok": host.last_health_check_ok,
            "last_health_check_detail": host.last_health_check_detail,
            "recent_jobs": [
                {"job": job, "badge": status_badge(job.status)}
                for job in ContainerJob.objects.for_host(host).order_by(
                    "-created_at", "-id")[:HOST_RECENT_JOBS]
            ],
        }

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The host page: its load against ``max_concurrent_jobs``, health, recent jobs, the form.

        Args:
            request: The admin request.
            object_id: The host's id.
            form_url: The form's action URL.
            extra_context: More template context.

        Returns:
            The page.

        Example:
            >>> from django.contrib import admin
            >>> admin.site._registry[ExecutorHost].change_form_template
            'admin/container_manager/executorhost/change_form.html'
        """
        context = dict(extra_context or {})
        host = self.get_object(request, unquote(object_id))
        if host is not None and self.has_view_or_change_permission(request, host):
            context["cm_host"] = self.host_summary(host)
            context["cm_jobs_url"] = reverse(
                f"{self.admin_site.name}:container_manager_containerjob_changelist")
        return super().change_view(request, object_id, form_url, extra_context=context)

    @admin.action(description="Run a health check on the selected hosts", permissions=["change"])
    def run_health_check(
        self, request: HttpRequest, queryset: QuerySet[ExecutorHost]
    ) -> TemplateResponse | None:
        """Check each selected host and report the results (after a confirmation page).

        Args:
            request: The admin request.
            queryset: The selected hosts.

        Returns:
            The confirmation page, or None once the checks ran.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.messages.storage.cookie import CookieStorage
            >>> from django.test import RequestFactory
            >>> request = RequestFactory().post("/admin/", {"post": "yes"})
            >>> request._messages = CookieStorage(request)
            >>> host = ExecutorHost.objects.create(
            ...     name="admin-mock", executor_type="mock", connection_string="mock://admin")
            >>> admin.site._registry[ExecutorHost].run_health_check(
            ...     request, ExecutorHost.objects.filter(pk=host.pk))
            >>> [str(m) for m in request._messages]
            ['admin-mock: healthy (mock executor)']
        """

        def check(host: ExecutorHost) -> None:
            """Check one host and report it."""
            ok = host.health_check()
            self.message_user(
                request, f"{host.name}: {'healthy' if ok else 'unhealthy'} "
                f"({host.last_health_check_detail})", messages.SUCCESS if ok else messages.ERROR
            )

        return confirm_or_run(
            self, request, queryset, action="run_health_check", verb="health-check",
            explanation="Each selected host is asked whether it answers (a call to its "
            "executor); the result is saved on the host.",
            problem=lambda host: None, run=check,
        )

    def _set_active(
        self, request: HttpRequest, queryset: QuerySet[ExecutorHost], active: bool
    ) -> TemplateResponse | None:
        """Deactivate or reactivate the selected hosts through operations.set_host_active."""
        state = "active" if active else "inactive"
        changed: list[str] = []

        def run(host: ExecutorHost) -> str | None:
            """Set one host's is_active; the refusal when it already was so."""
            if not operations.set_host_active(host, active):
                return f"already {state}"
            changed.append(host.name)
            return None

        verb = "reactivate" if active else "deactivate"
        explanation = (
            "Workers launch jobs on the selected hosts again." if active else
            "Workers stop launching jobs on the selected hosts; jobs already running "
            "there keep running, and are still harvested and cancellable."
        )
        response = confirm_or_run(
            self, request, queryset, action=f"{verb}_hosts", verb=verb,
            explanation=explanation, run=run,
            problem=lambda host: None if host.is_active != active else f"already {state}",
        )
        if response is None:
            self.message_user(request, f"{verb.capitalize()}d {len(changed)} host(s)"
                              + (f": {', '.join(changed)}." if changed else "."),
                              messages.SUCCESS)
        return response

    @admin.action(description="Deactivate the selected hosts (no new launches)",
                  permissions=["change"])
    def deactivate_hosts(
        self, request: HttpRequest, queryset: QuerySet[ExecutorHost]
    ) -> TemplateResponse | None:
        """Stop new launches on the selected hosts (after a confirmation page).

        Args:
            request: The admin request.
            queryset: The selected hosts.

        Returns:
            The confirmation page, or None once the hosts are deactivated.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.messages.storage.cookie import CookieStorage
            >>> from django.test import RequestFactory
            >>> request = RequestFactory().post("/admin/", {"post": "yes"})
            >>> request._messages = CookieStorage(request)
            >>> host = mock_host("admin-off")  # doctest setup: a saved mock host
            >>> admin.site._registry[ExecutorHost].deactivate_hosts(
            ...     request, ExecutorHost.objects.filter(pk=host.pk))
            >>> [str(m) for m in request._messages], ExecutorHost.objects.get(pk=host.pk).is_active
            (['Deactivated 1 host(s): admin-off.'], False)
        """
        return self._set_active(request, queryset, False)

    @admin.action(description="Reactivate the selected hosts", permissions=["change"])
    def reactivate_hosts(
        self, request: HttpRequest, queryset: QuerySet[ExecutorHost]
    ) -> TemplateResponse | None:
        """Let workers launch on the selected hosts again (after a confirmation page).

        Args:
            request: The admin request.
            queryset: The selected hosts.

        Returns:
            The confirmation page, or None once the hosts are active.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.messages.storage.cookie import CookieStorage
            >>> from django.test import RequestFactory
            >>> request = RequestFactory().post("/admin/", {"post": "yes"})
            >>> request._messages = CookieStorage(request)
            >>> host = mock_host("admin-on")  # doctest setup: a saved mock host (active)
            >>> admin.site._registry[ExecutorHost].reactivate_hosts(
            ...     request, ExecutorHost.objects.filter(pk=host.pk))
            >>> [str(m) for m in request._messages]
            ['Refused to reactivate admin-on (mock): already active.', 'Reactivated 0 host(s).']
        """
        return self._set_active(request, queryset, True)


@admin.register(EnvironmentVariableTemplate)
class EnvironmentVariableTemplateAdmin(MaskedEnvironmentAdmin):
    """Admin for environment variable templates; values are masked for view-only users.

    Example:
        >>> from django.contrib import admin
        >>> admin.site._registry[EnvironmentVariableTemplate].search_fields
        ('name', 'description')
    """

    list_display = ("name", "description", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("created_at", "updated_at")
    masked_fields = (("environment_variables_text", "masked_environment_variables"),)

    @admin.display(description="Environment variables text")
    def masked_environment_variables(self, obj: EnvironmentVariableTemplate) -> str:
        """The template's text with the values hidden (shown to users who cannot change it).

        Args:
            obj: The template.

        Returns:
            One ``KEY=********`` line per variable.

        Example:
            >>> from django.contrib import admin
            >>> admin.site._registry[EnvironmentVariableTemplate].masked_environment_variables(
            ...     EnvironmentVariableTemplate(environment_variables_text="TOKEN=abc"))
            'TOKEN=********'
        """
        return mask_env_text(obj.environment_variables_text)


@admin.register(ContainerJob)
class ContainerJobAdmin(MaskedEnvironmentAdmin):
    """Admin for jobs: the jobs list, the job page with its attempts and live status, actions.

    The overrides' values are masked for users who cannot change the job. The
    job page polls :meth:`live_view` (same permission as the page) while the job
    is not finished.

    Example:
        >>> from django.contrib import admin
        >>> admin.site._registry[ContainerJob].actions
        ['cancel_jobs', 'retry_jobs', 'duplicate_jobs']
    """

    list_display = ("id", "name", "image", "status_display", "docker_host", "priority",
                    "attempts", "exit_code", "created_at", "finished_at")
    list_display_links = ("id", "name")
    list_filter = ("status", "docker_host", "image", "created_at")
    search_fields = ("=id", "name", "image", "command", "status_message")
    ordering = ("-created_at", "-id")
    change_list_template = "admin/container_manager/containerjob/change_list.html"
    readonly_fields = ("status", "status_message", "exit_code", "attempts", "claimed_by",
                       "lease_expires_at", "created_at", "updated_at", "started_at",
                       "finished_at")
    list_select_related = ("docker_host",)
    change_form_template = "admin/container_manager/containerjob/change_form.html"
    actions = ["cancel_jobs", "retry_jobs", "duplicate_jobs"]
    masked_fields = (("environment_overrides", "masked_environment_overrides"),)

    def get_urls(self) -> list[URLPattern]:
        """The admin's URLs, plus ``<id>/live/``: the job's progress as JSON (:meth:`live_view`).

        Returns:
            The URL patterns.

        Example:
            >>> from django.contrib import admin
            >>> admin.site._registry[ContainerJob].get_urls()[0].name
            'container_manager_containerjob_live'
        """
        live = path("<path:object_id>/live/", self.admin_site.admin_view(self.live_view),
                    name="container_manager_containerjob_live")
        return [live, *super().get_urls()]

    def _viewable(self, request: HttpRequest, object_id: str) -> ContainerJob:
        """The job, if the user may view it (else 403; 404 when there is no such job)."""
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404(f"No job with id {object_id!r}.")
        if not self.has_view_or_change_permission(request, job):
            raise PermissionDenied
        return job

    def live_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """The job's status and attempts as JSON (:func:`job_data`), for the job page's poll.

        Guarded like the job page: the user needs the view (or change) permission
        on the job; no environment values are in it.

        Args:
            request: The admin request.
            object_id: The job's id.

        Returns:
            The JSON response.

        Raises:
            PermissionDenied: The user may not view the job (403).
            Http404: There is no such job.

        Example:
            >>> import json
            >>> from django.contrib import admin
            >>> from django.contrib.auth.models import User
            >>> from django.test import RequestFactory
            >>> host = mock_host("lv-mock")  # doctest setup: a saved mock host
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> request = RequestFactory().get("/")
            >>> request.user = User(is_staff=True, is_superuser=True)
            >>> body = admin.site._registry[ContainerJob].live_view(request, str(job.pk)).content
            >>> json.loads(body)["status"]
            'pending'
        """
        return JsonResponse(job_data(self._viewable(request, object_id)))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The job page: the form, then the job's status and attempts, polled while it runs.

        The attempts (:func:`job_data`) are read before Django's form view opens
        its transaction: a running attempt's logs come from its executor.

        Args:
            request: The admin request.
            object_id: The job's id.
            form_url: The form's action URL.
            extra_context: More template context.

        Returns:
            The page.

        Example:
            >>> from django.contrib import admin
            >>> admin.site._registry[ContainerJob].change_form_template
            'admin/container_manager/containerjob/change_form.html'
        """
        context = dict(extra_context or {})
        job = self.get_object(request, unquote(object_id))
        if job is not None and self.has_view_or_change_permission(request, job):
            context["cm_job"] = job_data(job)
            context["cm_live_url"] = reverse(
                f"{self.admin_site.name}:container_manager_containerjob_live", args=[job.pk])
            context["cm_poll_ms"] = LIVE_POLL_MS
        return super().change_view(request, object_id, form_url, extra_context=context)

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: ContainerJob) -> str:
        """The job's status, coloured, followed by the reason for a failure or cancellation.

        Args:
            obj: The job.

        Returns:
            Safe HTML for the jobs list.

        Example:
            >>> from django.contrib import admin
            >>> admin.site._registry[ContainerJob].status_display(
            ...     ContainerJob(status="failed", status_message="exited with code 3"))
            '<span class="cm-status cm-status-failed" ...>failed</span> <span class="cm-reason">exited with code 3</span>'
        """
        badge = status_badge(obj.status)
        if obj.status in (JobStatus.FAILED, JobStatus.CANCELLED) and obj.status_message:
            return format_html('{} <span class="cm-reason">{}</span>', badge, obj.status_message)
        return badge

    def status_counts(self) -> list[dict[str, Any]]:
        """The number of jobs in each status, in the lifecycle's order (one query).

        Returns:
            One ``{"status", "label", "count", "badge"}`` dict per status, zeros included.

        Example:
            >>> from django.contrib import admin
            >>> [(c["status"], c["count"]) for c in
            ...  admin.site._registry[ContainerJob].status_counts()][:2]
            [('pending', 0), ('starting', 0)]
        """
        counts = dict(
            ContainerJob.objects.order_by().values_list("status").annotate(n=Count("id"))
        )
        return [
            {"status": s.value, "label": s.label, "count": counts.get(s.value, 0),
             "badge": status_badge(s.value)}
            for s in JobStatus
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The jobs list, newest first, with the counts per status above it.

        Args:
            request: The admin request.
            extra_context: More template context.

        Returns:
            The page.

        Example:
            >>> from django.contrib import admin
            >>> admin.site._registry[ContainerJob].change_list_template  # shows the counts
            'admin/container_manager/containerjob/change_list.html'
        """
        context = {"status_counts": self.status_counts(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    @admin.display(description="Environment overrides")
    def masked_environment_overrides(self, obj: ContainerJob) -> str:
        r"""The job's overrides with the values hidden (shown to users who cannot change it).

        Args:
            obj: The job.

        Returns:
            One ``KEY=********`` line per variable.

        Example:
            >>> from django.contrib import admin
            >>> admin.site._registry[ContainerJob].masked_environment_overrides(
            ...     ContainerJob(environment_overrides="A=1\nB=2"))
            'A=********\nB=********'
        """
        return mask_env_text(obj.environment_overrides)

    @admin.action(description="Cancel the selected jobs", permissions=["change"])
    def cancel_jobs(
        self, request: HttpRequest, queryset: QuerySet[ContainerJob]
    ) -> TemplateResponse | None:
        """Cancel each selected job that is not finished (after a confirmation page).

        Through :func:`container_manager.operations.cancel`: a running job's
        container is stopped, its logs kept.

        Args:
            request: The admin request.
            queryset: The selected jobs.

        Returns:
            The confirmation page, or None once the jobs are cancelled.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.messages.storage.cookie import CookieStorage
            >>> from django.test import RequestFactory
            >>> host = mock_host("admin-cancel")  # doctest setup: a saved mock host
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> done = ContainerJob.objects.create(image="busybox", docker_host=host,
            ...                                    status="completed")
            >>> jobs = ContainerJob.objects.filter(pk__in=[job.pk, done.pk])
            >>> request = RequestFactory().post("/admin/", {"post": "yes"})
            >>> request._messages = CookieStorage(request)
            >>> admin.site._registry[ContainerJob].cancel_jobs(request, jobs)
            >>> [str(m) for m in request._messages], ContainerJob.objects.get(pk=job.pk).status
            (['Refused to cancel job ...: busybox (completed): already completed.', 'Cancelled 1 job(s).'], 'cancelled')
        """
        done = []

        def run(job: ContainerJob) -> str | None:
            """Cancel one job; the refusal when it finished first."""
            if not operations.cancel(job):
                job.refresh_from_db()
                return f"it finished before the cancel took effect ({job.status})"
            done.append(job.pk)
            return None

        response = confirm_or_run(
            self, request, queryset, action="cancel_jobs", verb="cancel",
            explanation="Each selected job that has not finished is cancelled: a running "
            "container is stopped and its logs kept; a pending job never starts.",
            problem=operations.cancel_problem, run=run,
        )
        if response is None:
            self.message_user(request, f"Cancelled {len(done)} job(s).", messages.SUCCESS)
        return response

    @admin.action(description="Retry the selected failed or cancelled jobs",
                  permissions=["change"])
    def retry_jobs(
        self, request: HttpRequest, queryset: QuerySet[ContainerJob]
    ) -> TemplateResponse | None:
        """Put each selected failed or cancelled job back to pending (after a confirmation page).

        Through :func:`container_manager.operations.retry`: one more attempt, the
        earlier attempts and their logs kept.

        Args:
            request: The admin request.
            queryset: The selected jobs.

        Returns:
            The confirmation page, or None once the jobs are pending again.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.auth.models import User
            >>> from django.contrib.messages.storage.cookie import CookieStorage
            >>> from django.test import RequestFactory
            >>> host = mock_host("admin-retry")  # doctest setup: a saved mock host
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host,
            ...                                   status="failed")
            >>> request = RequestFactory().post("/admin/", {"post": "yes"})
            >>> request._messages, request.user = CookieStorage(request), User(username="ops")
            >>> admin.site._registry[ContainerJob].retry_jobs(
            ...     request, ContainerJob.objects.filter(pk=job.pk))
            >>> [str(m) for m in request._messages]
            ['Retried 1 job(s): they are pending for a new attempt.']
            >>> job.refresh_from_db(); job.status, job.status_message
            ('pending', 'retried by ops in the admin')
        """
        done = []

        def run(job: ContainerJob) -> None:
            """Retry one job (an operation's refusal is an exception)."""
            operations.retry(job, message=f"retried by {request.user.get_username()} in the admin")
            done.append(job.pk)

        response = confirm_or_run(
            self, request, queryset, action="retry_jobs", verb="retry",
            explanation="Each selected failed or cancelled job goes back to pending for one "
            "more attempt; its earlier attempts and their logs are kept.",
            problem=operations.retry_problem, run=run,
        )
        if response is None:
            self.message_user(request, f"Retried {len(done)} job(s): they are pending for a "
                              "new attempt.", messages.SUCCESS)
        return response

    @admin.action(description="Duplicate the selected jobs as new pending jobs",
                  permissions=["add"])
    def duplicate_jobs(
        self, request: HttpRequest, queryset: QuerySet[ContainerJob]
    ) -> TemplateResponse | None:
        """Save a new pending copy of each selected job (after a confirmation page).

        Through :func:`container_manager.operations.duplicate`: the copy runs the
        same image, command, environment and limits on the same host.

        Args:
            request: The admin request.
            queryset: The selected jobs.

        Returns:
            The confirmation page, or None once the copies are saved.

        Example:
            >>> from django.contrib import admin
            >>> from django.contrib.messages.storage.cookie import CookieStorage
            >>> from django.test import RequestFactory
            >>> host = mock_host("admin-dup")  # doctest setup: a saved mock host
            >>> job = ContainerJob.objects.create(image="busybox", docker_host=host)
            >>> request = RequestFactory().post("/admin/", {"post": "yes"})
            >>> request._messages = CookieStorage(request)
            >>> admin.site._registry[ContainerJob].duplicate_jobs(
            ...     request, ContainerJob.objects.filter(pk=job.pk))
            >>> [str(m) for m in request._messages]
            ['Duplicated 1 job(s) as new pending job(s): ...']
            >>> ContainerJob.objects.filter(docker_host=host).count()
            2
        """
        copies: list[str] = []

        def run(job: ContainerJob) -> None:
            """Duplicate one job (an operation's refusal is an exception)."""
            copies.append(str(operations.duplicate(job).pk))

        response = confirm_or_run(
            self, request, queryset, action="duplicate_jobs", verb="duplicate",
            explanation="Each selected job is copied as a new pending job (same image, "
            "command, environment, limits and host); the original is not changed.",
            problem=operations.duplicate_problem, run=run,
        )
        if response is None:
            self.message_user(request, f"Duplicated {len(copies)} job(s) as new pending "
                              f"job(s): {', '.join(copies) or 'none'}.", messages.SUCCESS)
        return response


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
