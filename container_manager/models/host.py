"""The :class:`ExecutorHost` model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from container_manager.executors import executor_choices
from container_manager.jsonvalues import json_problem
from container_manager.numbers import NumberRule, field_errors, non_finite_errors
from container_manager.validators import validate_connection_string

if TYPE_CHECKING:
    # Only for type checkers: django-types declares the reverse managers' type here.
    from django.db.models.manager import RelatedManager

    from container_manager.models.job import ContainerJob


class ExecutorType(models.TextChoices):
    """The built-in kinds of backend a host can be.

    The field's choices come from the executor registry
    (:func:`~container_manager.executors.executor_choices`), so that executors
    registered in ``CONTAINER_MANAGER["EXECUTORS"]`` are valid too; these are the
    built-in ones, by name.

    Example:
        >>> ExecutorType.values
        ['docker', 'cloudrun', 'mock']
    """

    DOCKER = "docker", "Docker engine"
    CLOUDRUN = "cloudrun", "Google Cloud Run"
    MOCK = "mock", "Mock (tests, docs, demos)"


class ExecutorHostManager(models.Manager["ExecutorHost"]):
    """The default manager of :class:`ExecutorHost` (``ExecutorHost.objects``).

    Example:
        >>> ExecutorHost.objects.active().count()
        0
    """

    if TYPE_CHECKING:
        # For type checkers without Django stubs (plain pyright): Django builds a manager's
        # query methods at run time, so they would see ``objects`` and ``get()`` as Any.
        # Nothing here exists at run time.
        def __get__(self, instance: object, owner: object) -> Self:
            """Return the manager itself (``Model.objects``).

            Args:
                instance: None (managers are read from the model class).
                owner: The model class.

            Returns:
                This manager.
            """
            ...

        def get(self, *args: object, **kwargs: object) -> ExecutorHost:
            """Return the one host matching the lookups (Django's ``QuerySet.get``).

            Args:
                *args: ``Q`` objects.
                **kwargs: Field lookups, e.g. ``pk=1``.

            Returns:
                The host.

            Raises:
                ExecutorHost.DoesNotExist: No host matches.
                ExecutorHost.MultipleObjectsReturned: Several hosts match.
            """
            ...

    def active(self) -> models.QuerySet[ExecutorHost]:
        """Return the hosts that accept new jobs (``is_active=True``).

        Returns:
            A queryset of active hosts.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="mock-a", executor_type="mock", connection_string="mock://a")
            >>> list(ExecutorHost.objects.active())
            [<ExecutorHost: mock-a (mock)>]
        """
        return self.filter(is_active=True)

    def get_by_natural_key(self, name: str) -> ExecutorHost:
        """Return the host called ``name`` (used by fixtures and ``loaddata``).

        Args:
            name: The host's unique name.

        Returns:
            The host.

        Raises:
            ExecutorHost.DoesNotExist: No host has that name.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="prod-mock", executor_type="mock", connection_string="mock://prod")
            >>> ExecutorHost.objects.get_by_natural_key("prod-mock")
            <ExecutorHost: prod-mock (mock)>
        """
        return self.get(name=name)


class ExecutorHost(models.Model):
    r"""Where jobs run: a Docker engine, a Cloud Run region, or the mock executor.

    A host names a backend (:attr:`executor_type`) and how to reach it
    (:attr:`connection_string`). Every :class:`~container_manager.models.ContainerJob`
    points to one host through its ``docker_host`` field; a host that still has
    jobs cannot be deleted (``PROTECT``). Inactive hosts (``is_active=False``)
    launch nothing: :meth:`ContainerJob.launch <container_manager.models.ContainerJob.launch>`
    refuses them and workers skip their jobs.

    Connection strings, by :attr:`executor_type`:

    * ``docker``: ``unix:///var/run/docker.sock`` (local socket) or
      ``tcp://docker.example.com:2376`` (remote). For TLS over TCP set
      :attr:`tls_enabled` (and :attr:`tls_verify`) and put the certificate paths
      in :attr:`executor_config` (``tls_ca_cert``, ``tls_client_cert``,
      ``tls_client_key``).
    * ``cloudrun``: ``projects/PROJECT_ID/locations/REGION``.
    * ``mock``: ``mock://NAME``; the mock's behaviour comes from
      :attr:`executor_config` (see :mod:`container_manager.executors.mock`).

    :meth:`health_check` asks the backend whether it answers and records the
    result in :attr:`last_health_check_at`, :attr:`last_health_check_ok` and
    :attr:`last_health_check_detail`.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="local-mock",
        ...     executor_type="mock",
        ...     connection_string="mock://local",
        ...     executor_config={"logs": "Hello World\n"},
        ... )
        >>> host.full_clean()
        >>> if host.health_check():
        ...     print(f"Host {host.name} is available")
        Host local-mock is available
    """

    name = models.CharField(
        max_length=100, unique=True, help_text="Unique name of the host, e.g. 'production-docker'."
    )
    """Unique name of the host, e.g. 'production-docker'."""
    executor_type = models.CharField(
        max_length=20,
        choices=executor_choices,
        default=ExecutorType.DOCKER.value,
        help_text="The backend: 'docker' (a Docker engine), 'cloudrun' (Google Cloud Run) "
        "or 'mock' (runs nothing; for tests, docs and demos).",
    )
    """The backend: 'docker' (a Docker engine), 'cloudrun' (Google Cloud Run) or 'mock' (runs
    nothing; for tests, docs and demos).
    """
    connection_string = models.CharField(
        max_length=500,
        help_text="How to reach the backend. docker: unix:///var/run/docker.sock or "
        "tcp://host:port; cloudrun: projects/PROJECT_ID/locations/REGION; mock: mock://NAME.",
    )
    """How to reach the backend. docker: unix:///var/run/docker.sock or tcp://host:port; cloudrun:
    projects/PROJECT_ID/locations/REGION; mock: mock://NAME.
    """
    tls_enabled = models.BooleanField(
        default=False,
        help_text="Docker over tcp:// only: connect with TLS, using the certificate paths "
        "in executor_config.",
    )
    """Docker over tcp:// only: connect with TLS, using the certificate paths in executor_config."""
    tls_verify = models.BooleanField(
        default=True,
        help_text="Docker with TLS only: verify the daemon's certificate against tls_ca_cert.",
    )
    """Docker with TLS only: verify the daemon's certificate against tls_ca_cert."""
    is_active = models.BooleanField(
        default=True, help_text="Inactive hosts launch no jobs; workers skip their pending jobs."
    )
    """Inactive hosts launch no jobs; workers skip their pending jobs."""
    executor_config = models.JSONField(
        default=dict,
        blank=True,
        help_text="Executor-specific options as a JSON object; the allowed keys depend on "
        "executor_type, and an unknown key is an error.",
    )
    """Executor-specific options as a JSON object; the allowed keys depend on executor_type, and an
    unknown key is an error.
    """
    max_concurrent_jobs = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Most jobs that may be starting or running on this host at once, across "
        "all workers. Blank: no limit.",
    )
    """Most jobs that may be starting or running on this host at once, across all workers. Blank: no
    limit.
    """
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the host was created.")
    """When the host was created."""
    updated_at = models.DateTimeField(auto_now=True, help_text="When the host was last saved.")
    """When the host was last saved."""
    last_health_check_at = models.DateTimeField(
        null=True, blank=True, help_text="When health_check() last ran. Blank: never."
    )
    """When health_check() last ran. Blank: never."""
    last_health_check_ok = models.BooleanField(
        null=True, blank=True, help_text="Result of the last health_check(). Blank: never checked."
    )
    """Result of the last health_check(). Blank: never checked."""
    last_health_check_detail = models.TextField(
        blank=True,
        help_text="What the last health check found: the backend's version, or the error.",
    )
    """What the last health check found: the backend's version, or the error."""

    jobs: RelatedManager[ContainerJob]
    """The jobs that run on this host (reverse of ``ContainerJob.docker_host``).

    A related manager: ``host.jobs.all()``, ``.filter(...)``, ``.count()``.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="busy-mock", executor_type="mock", connection_string="mock://busy")
        >>> job = ContainerJob.objects.create(image="busybox", command="true", docker_host=host)
        >>> host.jobs.count()
        1
    """

    objects: ExecutorHostManager = ExecutorHostManager()
    """The host manager: Django's queries plus ``active()`` and ``get_by_natural_key(name)``.

    Example:
        >>> host = ExecutorHost.objects.create(
        ...     name="objects-mock", executor_type="mock", connection_string="mock://objects")
        >>> ExecutorHost.objects.active().contains(host)
        True
    """

    #: The rule each numeric field must satisfy (checked by :meth:`clean_fields`).
    NUMBER_RULES: ClassVar[dict[str, NumberRule]] = {
        "max_concurrent_jobs": NumberRule(minimum=1, maximum=100_000, integer=True),
    }

    class Meta:
        """Model options."""

        ordering = ["name"]
        verbose_name = "executor host"

    def __str__(self) -> str:
        """Return ``"name (executor_type)"``.

        Returns:
            The label shown in the admin and in logs.

        Example:
            >>> str(ExecutorHost(name="prod", executor_type="docker"))
            'prod (docker)'
        """
        return f"{self.name} ({self.executor_type})"

    def natural_key(self) -> tuple[str]:
        """Return ``(name,)``, the key used by fixtures.

        Returns:
            The one-element natural key.

        Example:
            >>> ExecutorHost(name="prod").natural_key()
            ('prod',)
        """
        return (self.name,)

    def clean_fields(self, exclude: Any = None) -> None:
        """Run Django's field checks, the numeric rules, and a strict-JSON check of the config.

        ``executor_config`` must be strict JSON (no NaN or infinity, which the
        database refuses) nested at most
        :data:`~container_manager.jsonvalues.MAX_JSON_DEPTH` levels; such a value
        is reported before Django's own check, which could not encode it.

        Args:
            exclude: Field names not to check.

        Raises:
            ValidationError: Keyed by field.

        Example:
            >>> ExecutorHost(name="h", executor_type="mock", connection_string="mock://h",
            ...              executor_config={"run_seconds": float("nan")}).clean_fields()
            Traceback (most recent call last):
            ...
            django.core.exceptions.ValidationError: {'executor_config': ["executor_config must not contain NaN or infinity (at ['run_seconds'])."]}
        """
        exclude = set(exclude or ())
        errors: dict[str, list[str]] = {}
        if "executor_config" not in exclude:
            shape = json_problem(self.executor_config)
            if shape is not None:
                errors["executor_config"] = [f"executor_config {shape}."]
                exclude.add("executor_config")
        # NaN and infinity first: Django's integer fields cannot even convert them.
        errors.update(non_finite_errors(self, self.NUMBER_RULES, exclude))
        exclude.update(errors)
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        errors.update(field_errors(self, self.NUMBER_RULES, exclude, skip=errors))
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        """Validate the connection string, TLS flags and ``executor_config`` for the type.

        Raises:
            ValidationError: Keyed by field: a connection string in the wrong
                format, TLS on a host that is not Docker over ``tcp://``, or an
                ``executor_config`` with unknown keys or values of the wrong type.

        Example:
            >>> ExecutorHost(name="m", executor_type="mock", connection_string="mock://m",
            ...              executor_config={"exit_code": 1, "colour": "red"}).clean()
            Traceback (most recent call last):
            ...
            django.core.exceptions.ValidationError: {'executor_config': ["Unknown executor_config key 'colour' for mock hosts; allowed: exit_code, fail_launch, healthy, logs, run_seconds, stderr."]}
        """
        from container_manager.executors import ExecutorNotAvailableError, get_executor_class

        errors: dict[str, list[str]] = {}
        try:
            validate_connection_string(self.executor_type, self.connection_string)
        except ValidationError as exc:
            errors["connection_string"] = exc.messages
        try:
            executor_class = get_executor_class(self.executor_type)
        except ExecutorNotAvailableError:
            executor_class = None
        if self.tls_enabled and not (
            executor_class is not None and executor_class.uses_tls(self.connection_string)
        ):
            errors["tls_enabled"] = [
                "TLS applies only to Docker hosts reached over tcp://; turn it off or use "
                "a tcp:// connection string."
            ]
        if executor_class is not None:
            problems = executor_class.validate_config(self.executor_config)
            if problems:
                errors["executor_config"] = problems
        if errors:
            raise ValidationError(errors)

    def config_problems(self) -> list[str]:
        """List what is wrong with the host's numbers and ``executor_config``, as messages.

        Checked again before every launch (through the job's validation), since a
        host saved through the ORM was never validated.

        Returns:
            One message per problem; empty when the host's settings are valid.

        Example:
            >>> ExecutorHost(name="big", executor_type="mock",
            ...              executor_config={"exit_code": 2**70}).config_problems()
            ["executor_config['exit_code'] must be a whole number from 0 to 255."]
        """
        from container_manager.executors import ExecutorNotAvailableError, get_executor_class

        problems = [m for ms in field_errors(self, self.NUMBER_RULES).values() for m in ms]
        shape = json_problem(self.executor_config)
        if shape is not None:
            return [*problems, f"executor_config {shape}."]
        try:
            executor_class = get_executor_class(self.executor_type)
        except ExecutorNotAvailableError:
            return problems  # reported at launch, naming what to install
        return problems + executor_class.validate_config(self.executor_config)

    def health_check(self) -> bool:
        """Ask the backend whether it answers, record the result, and return it.

        Never raises for an unreachable or misconfigured host: the failure is
        returned as False and its reason kept in :attr:`last_health_check_detail`.
        For a host already in the database the result is saved at once (one ``UPDATE``).

        Returns:
            True when the backend answered and is usable.

        Example:
            >>> host = ExecutorHost.objects.create(
            ...     name="down", executor_type="mock", connection_string="mock://down",
            ...     executor_config={"healthy": False})
            >>> host.health_check()
            False
            >>> host.last_health_check_detail
            'mock host configured unhealthy'
        """
        from container_manager.executors import get_executor

        try:
            result = get_executor(self).health_check()
            ok, detail = bool(result.ok), result.detail
        except Exception as exc:  # noqa: BLE001 - a health check must never raise
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        self.last_health_check_at = timezone.now()
        self.last_health_check_ok = ok
        self.last_health_check_detail = detail
        if self.pk is not None:
            ExecutorHost.objects.filter(pk=self.pk).update(
                last_health_check_at=self.last_health_check_at,
                last_health_check_ok=ok,
                last_health_check_detail=detail,
            )
        return ok
