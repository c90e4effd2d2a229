"""The :class:`EnvironmentVariableTemplate` model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from django.db import models

from container_manager.envfile import parse_env_text

if TYPE_CHECKING:
    # Only for type checkers: django-types declares the reverse managers' type here.
    from django.db.models.manager import RelatedManager

    from container_manager.models.job import ContainerJob


class EnvironmentVariableTemplateManager(models.Manager["EnvironmentVariableTemplate"]):
    """The default manager of :class:`EnvironmentVariableTemplate` (``.objects``).

    Example:
        >>> EnvironmentVariableTemplate.objects.get_by_natural_key("nope")
        Traceback (most recent call last):
        ...
        container_manager.models.template.EnvironmentVariableTemplate.DoesNotExist: EnvironmentVariableTemplate matching query does not exist.
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

        def get(self, *args: object, **kwargs: object) -> EnvironmentVariableTemplate:
            """Return the one template matching the lookups (Django's ``QuerySet.get``).

            Args:
                *args: ``Q`` objects.
                **kwargs: Field lookups, e.g. ``pk=1``.

            Returns:
                The template.

            Raises:
                EnvironmentVariableTemplate.DoesNotExist: No template matches.
                EnvironmentVariableTemplate.MultipleObjectsReturned: Several templates match.
            """
            ...

    def get_by_natural_key(self, name: str) -> EnvironmentVariableTemplate:
        """Return the template called ``name`` (used by fixtures and ``loaddata``).

        Args:
            name: The template's unique name.

        Returns:
            The template.

        Raises:
            EnvironmentVariableTemplate.DoesNotExist: No template has that name.

        Example:
            >>> template = EnvironmentVariableTemplate.objects.create(name="base")
            >>> EnvironmentVariableTemplate.objects.get_by_natural_key("base")
            <EnvironmentVariableTemplate: base>
        """
        return self.get(name=name)


class EnvironmentVariableTemplate(models.Model):
    r"""A reusable, named set of environment variables for jobs.

    Jobs point to a template through
    :attr:`ContainerJob.environment_template <container_manager.models.ContainerJob.environment_template>`
    and may override single variables in
    :attr:`~container_manager.models.ContainerJob.environment_overrides`; the
    job's final environment is the template's variables updated by its overrides
    (see :meth:`ContainerJob.get_environment <container_manager.models.ContainerJob.get_environment>`).
    The template is read when the job is launched, so editing a template changes
    the jobs launched after the edit, not those already running.

    Format of :attr:`environment_variables_text` (checked by :meth:`clean`, which
    names every bad line by number):

    * one ``KEY=VALUE`` per line, no spaces around ``=``; empty lines are ignored;
    * keys are POSIX names (``[A-Za-z_][A-Za-z0-9_]*``), each at most once;
    * values may contain ``=``; an empty value (``KEY=``) is allowed;
    * values with spaces go in double quotes (``KEY="two words"``), removed when parsed;
    * comments are not supported: a line starting with ``#`` is an error.

    Security: the text is stored in plaintext in the database and shown in the
    admin. Do not put secrets in templates; give the container a reference to a
    secret store (a file path, a secret name) and let it read the secret itself.

    Example:
        >>> template = EnvironmentVariableTemplate.objects.create(
        ...     name="python-production",
        ...     description="Production Python application environment",
        ...     environment_variables_text="PYTHONPATH=/app\nENV=production\nDEBUG=False",
        ... )
        >>> template.full_clean()
        >>> env = template.get_environment_variables_dict()
        >>> env["ENV"], env["DEBUG"]
        ('production', 'False')
    """

    name = models.CharField(
        max_length=100,
        unique=True,
        help_text="Unique name of the template, e.g. 'python-production'.",
    )
    """Unique name of the template, e.g. 'python-production'."""
    description = models.TextField(
        blank=True, help_text="What the template is for; shown in the admin."
    )
    """What the template is for; shown in the admin."""
    environment_variables_text = models.TextField(
        blank=True,
        help_text=(
            "One KEY=VALUE per line, no spaces around '='. Quote values with spaces: "
            'KEY="a b". Empty lines are ignored; comment lines (#) are not allowed. '
            "Stored in plaintext: do not put secrets here."
        ),
    )
    """One KEY=VALUE per line, no spaces around '='. Quote values with spaces: KEY="a b". Empty
    lines are ignored; comment lines (#) are not allowed. Stored in plaintext: do not put secrets
    here.
    """
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the template was created.")
    """When the template was created."""
    updated_at = models.DateTimeField(auto_now=True, help_text="When the template was last saved.")
    """When the template was last saved."""

    jobs: RelatedManager[ContainerJob]
    """The jobs that use this template (reverse of ``ContainerJob.environment_template``).

    A related manager: ``template.jobs.all()``, ``.filter(...)``, ``.count()``.

    Example:
        >>> template = EnvironmentVariableTemplate.objects.create(name="shared")
        >>> template.jobs.count()
        0
    """

    objects: EnvironmentVariableTemplateManager = EnvironmentVariableTemplateManager()
    """The template manager: Django's queries plus ``get_by_natural_key(name)``.

    Example:
        >>> template = EnvironmentVariableTemplate.objects.create(name="objects-base")
        >>> EnvironmentVariableTemplate.objects.get_by_natural_key("objects-base").name
        'objects-base'
    """

    class Meta:
        """Model options."""

        ordering = ["name"]
        verbose_name = "environment variable template"

    def __str__(self) -> str:
        """Return the template's name.

        Returns:
            The name.

        Example:
            >>> str(EnvironmentVariableTemplate(name="base"))
            'base'
        """
        return self.name

    def natural_key(self) -> tuple[str]:
        """Return ``(name,)``, the key used by fixtures.

        Returns:
            The one-element natural key.

        Example:
            >>> EnvironmentVariableTemplate(name="base").natural_key()
            ('base',)
        """
        return (self.name,)

    def clean(self) -> None:
        r"""Check :attr:`environment_variables_text`, naming every bad line by number.

        Raises:
            ValidationError: On the ``environment_variables_text`` field, one
                message per bad line.

        Example:
            >>> EnvironmentVariableTemplate(name="t", environment_variables_text="A=1\nB C").clean()
            Traceback (most recent call last):
            ...
            django.core.exceptions.ValidationError: {'environment_variables_text': ["Line 2: no '=' found; write KEY=VALUE."]}
        """
        from django.core.exceptions import ValidationError

        try:
            parse_env_text(self.environment_variables_text)
        except ValidationError as exc:
            raise ValidationError({"environment_variables_text": exc.messages}) from None

    def get_environment_variables_dict(self) -> dict[str, str]:
        r"""Parse :attr:`environment_variables_text` into a dict.

        Returns:
            Variable names mapped to their (unquoted) values, in file order.

        Raises:
            ValidationError: The text is invalid; every bad line is named.

        Example:
            >>> t = EnvironmentVariableTemplate(
            ...     name="t", environment_variables_text='GREETING="hello world"\nEMPTY=')
            >>> t.get_environment_variables_dict()
            {'GREETING': 'hello world', 'EMPTY': ''}
        """
        return parse_env_text(self.environment_variables_text)
