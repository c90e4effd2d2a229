"""Model reference pages: fields generated from the models, and no descriptor noise.

For every Django model documented with ``autoclass``, this extension

* appends one ``py:attribute`` per field, written from ``Model._meta``: its
  help_text, type (with max length), choices, default, null/blank, uniqueness and,
  for relations, a link to the related model and the ``on_delete`` rule;
* documents the reverse relations (``job.containerexecution_set``, ``host.jobs``),
  the default manager (``objects``) and the ``DoesNotExist`` /
  ``MultipleObjectsReturned`` exceptions, with links; a reverse relation or manager
  declared in the model's source with an attribute docstring (the string right after
  it, which editors show on hover) gets that docstring, its Example executed by the
  doctest builder;
* warns when a field's attribute docstring (there for editors' hover) differs from
  its help_text, which stays the one text shown here;
* skips what autodoc would otherwise print for the same attributes: field
  descriptors ("A wrapper for a deferred-loading field"), relation descriptors
  ("Accessor to the related object"), the manager's ``<...Manager object>``
  repr, Django's generated ``get_FOO_display`` / ``get_next_by_FOO`` methods and
  the ``Meta`` options class.

It replaces sphinxcontrib-django, which needs Sphinx's legacy autodoc on Sphinx 9.
"""

from __future__ import annotations

import functools
import re
from functools import cache
from typing import Any

from django.db import models
from django.db.models.fields import NOT_PROVIDED
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ManyToManyDescriptor,
    ReverseManyToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.db.models.manager import BaseManager
from django.db.models.query_utils import DeferredAttribute
from sphinx.application import Sphinx
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

logger = logging.getLogger(__name__)

_NOISE_TYPES = (
    DeferredAttribute,
    ForwardManyToOneDescriptor,
    ReverseManyToOneDescriptor,
    ReverseOneToOneDescriptor,
    ManyToManyDescriptor,
    BaseManager,
    functools.partialmethod,
)
_GENERATED = re.compile(r"get_(next|previous)_by_\w+|get_\w+_display\Z")
_RST_SPECIAL = re.compile(r"([\\*`|_])")


def escape(text: str) -> str:
    """Escape reStructuredText markup characters in plain text (help_text)."""
    return _RST_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def is_model(obj: Any) -> bool:
    """Whether ``obj`` is a concrete Django model class."""
    return isinstance(obj, type) and issubclass(obj, models.Model) and not obj._meta.abstract


def public_path(model: type[models.Model]) -> str:
    """The documented path of a model: ``container_manager.models.Name`` for ours."""
    if model.__module__.startswith("container_manager.models"):
        return f"container_manager.models.{model.__name__}"
    return f"{model.__module__}.{model.__qualname__}"


def _default(field: models.Field) -> str | None:
    if getattr(field, "auto_now", False):
        return "set to the current time on every save"
    if getattr(field, "auto_now_add", False):
        return "set to the current time when the row is created"
    if field.default is NOT_PROVIDED:
        return None
    default = field.default
    if callable(default):
        name = getattr(default, "__qualname__", repr(default))
        module = getattr(default, "__module__", "")
        if module == "builtins":
            return f"``{name}()`` (a new empty {name} for every row)"
        return f"``{module}.{name}()`` (called for every new row)"
    value = getattr(default, "value", default)  # TextChoices members -> plain value
    return f"``{value!r}``"


def _type_text(field: models.Field) -> str:
    text = f"``{type(field).__name__}``"
    details = []
    if getattr(field, "max_length", None):
        details.append(f"max length {field.max_length}")
    if field.primary_key:
        details.append("primary key")
    if field.unique and not field.primary_key:
        details.append("unique")
    if field.db_index and not field.unique:
        details.append("indexed")
    return text + (f" ({', '.join(details)})" if details else "")


def field_lines(field: models.Field) -> list[str]:
    """The reST for one concrete field, as a ``py:attribute``."""
    lines = [f".. py:attribute:: {field.name}", ""]
    help_text = escape(field.help_text) if field.help_text else ""
    if field.auto_created and field.primary_key:
        help_text = help_text or "Primary key, assigned by the database when the row is saved."
    if help_text:
        lines += [f"   {help_text}", ""]
    facts = [f"**Type:** {_type_text(field)}"]
    if field.is_relation and field.related_model is not None:
        on_delete = getattr(getattr(field.remote_field, "on_delete", None), "__name__", "")
        facts.append(
            f"**Related model:** :class:`~{public_path(field.related_model)}`"
            + (f", ``on_delete={on_delete}``" if on_delete else "")
        )
        facts.append(f"**Column:** ``{field.attname}`` (the related primary key)")
        related_name = field.remote_field.get_accessor_name()
        if related_name:
            facts.append(
                f"**Reverse accessor:** ``{field.related_model._meta.model_name}"
                f".{related_name}``"
            )
    facts.append(f"**Null:** {'yes' if field.null else 'no'}")
    facts.append(f"**Blank:** {'yes' if field.blank else 'no (required)'}")
    default = _default(field)
    if default:
        facts.append(f"**Default:** {default}")
    if field.choices:
        choices = ", ".join(f"``{value}`` ({escape(label)})" for value, label in field.flatchoices)
        facts.append(f"**Choices:** {choices}")
    lines += [f"   | {fact}" for fact in facts]
    lines.append("")
    return lines


@cache
def _attribute_docs(module: str) -> dict[tuple[str, str], list[str]]:
    """Attribute docstrings of a module's classes, by (class name, attribute name)."""
    try:
        return dict(ModuleAnalyzer.for_module(module).find_attr_docs())
    except Exception:  # noqa: BLE001 - no source: nothing to take
        return {}


def attribute_doc(app: Sphinx, model: type[models.Model], name: str) -> list[str]:
    """The attribute docstring declared for ``name`` in the model's source, as reST.

    Napoleon converts its Google sections (``Example:``) as it does for docstrings
    that autodoc reads; an empty list when there is none.
    """
    lines = _attribute_docs(model.__module__).get((model.__qualname__, name))
    if not lines:
        return []
    return GoogleDocstring(list(lines), app.config, app, what="class").lines()


def _indented(lines: list[str]) -> list[str]:
    return [f"   {line}" if line else "" for line in lines]


def check_field_docstrings(model: type[models.Model]) -> None:
    """Warn when a field's attribute docstring says something else than its help_text."""
    for field in model._meta.concrete_fields:
        lines = _attribute_docs(model.__module__).get((model.__qualname__, field.name))
        if lines and " ".join(" ".join(lines).split()) != " ".join(str(field.help_text).split()):
            logger.warning(
                "%s.%s: the attribute docstring differs from help_text; keep them equal",
                public_path(model), field.name, type="cm_models", subtype="field_docstring",
            )


def reverse_lines(app: Sphinx, model: type[models.Model], rel: models.ForeignObjectRel) -> list[str]:
    """The reST for a reverse relation (``host.jobs``, ``job.containerexecution_set``)."""
    accessor = rel.get_accessor_name()
    if not accessor or accessor.endswith("+"):
        return []
    declared = attribute_doc(app, model, accessor)
    if declared:
        return [f".. py:attribute:: {accessor}", "", *_indented(declared), ""]
    other = public_path(rel.related_model)
    what = "A related manager over the" if rel.multiple else "The"
    return [
        f".. py:attribute:: {accessor}",
        "",
        f"   {what} :class:`~{other}` objects whose ``{rel.field.name}`` is this object "
        f"(reverse of :attr:`~{other}.{rel.field.name}`); e.g. ``.{accessor}.all()``.",
        "",
    ]


def model_lines(app: Sphinx, model: type[models.Model]) -> list[str]:
    """Everything appended to a model's class docstring."""
    check_field_docstrings(model)
    meta = model._meta
    path = public_path(model)
    lines = ["", ".. rubric:: Fields", ""]
    for field in meta.concrete_fields:
        lines += field_lines(field)
    reverse = [
        rel for rel in meta.get_fields() if rel.auto_created and not rel.concrete and rel.is_relation
    ]
    if reverse:
        lines += ["", ".. rubric:: Related objects", ""]
        for rel in reverse:
            lines += reverse_lines(app, model, rel)
    manager = meta.default_manager
    lines += ["", ".. rubric:: Manager and exceptions", ""]
    if manager is not None:
        manager_cls = type(manager)
        if manager_cls.__module__.startswith("container_manager"):
            manager_ref = f":class:`~{public_path_of(manager_cls)}`"
        else:
            manager_ref = f"``{manager_cls.__name__}``"
        declared = attribute_doc(app, model, manager.name)
        if declared:
            body = [*_indented(declared), "", f"   | **Type:** {manager_ref} (the default manager)"]
        else:
            body = [
                f"   The default manager, a {manager_ref}: ``{model.__name__}.{manager.name}"
                ".filter(...)``, ``.create(...)``, ``.get(...)``."
            ]
        lines += [f".. py:attribute:: {manager.name}", "", *body, ""]
    lines += [
        ".. py:exception:: DoesNotExist",
        "",
        f"   Raised by ``{model.__name__}.objects.get()`` when no row matches; a subclass "
        "of :exc:`django.core.exceptions.ObjectDoesNotExist`.",
        "",
        ".. py:exception:: MultipleObjectsReturned",
        "",
        f"   Raised by ``{model.__name__}.objects.get()`` when several rows match; a "
        "subclass of :exc:`django.core.exceptions.MultipleObjectsReturned`.",
        "",
        f".. seealso:: :doc:`/guides/concepts` for how ``{path.rsplit('.', 1)[-1]}`` fits in.",
        "",
    ]
    return lines


def public_path_of(cls: type) -> str:
    """Documented path of one of our classes (managers are re-exported by models)."""
    import container_manager.models as public

    if getattr(public, cls.__name__, None) is cls:
        return f"container_manager.models.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def on_process_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Append the generated field documentation to model class docstrings."""
    if what == "class" and is_model(obj):
        lines.extend(model_lines(app, obj))


_PROSE_BEFORE_COLON = re.compile(r"^[^:`]*\s[^:`]*:\s")


def protect_inline_colon(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Stop napoleon reading "Summary text: more" of an attribute as "type: description".

    Napoleon splits the first line of attribute, data and property docstrings on
    the first colon and turns the left part into a type. When that part is prose
    (it has spaces), an empty type is put in front, so the line stays as written.
    """
    if what in ("attribute", "data", "property") and lines and _PROSE_BEFORE_COLON.match(lines[0]):
        lines[0] = ": " + lines[0]


def keep_rtype_in_field_list(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Put a ``:rtype:`` that landed under a ``.. rubric::`` back into the field list.

    sphinx-autodoc-typehints before 3.7 (the last releases for Python 3.11) inserts
    the return type of a function without a ``Returns:`` section right after
    napoleon's ``.. rubric:: Example`` line, which docutils reports as "Explicit
    markup ends without a blank line". Newer releases place it in the field list.
    """
    for i in range(1, len(lines)):
        if lines[i].startswith(":rtype:") and lines[i - 1].startswith(".. rubric::"):
            rtype = lines.pop(i)
            rubric = i - 1
            blank = rubric - 1 if rubric > 0 and not lines[rubric - 1].strip() else rubric
            lines[blank:blank] = [rtype] if blank != rubric else [rtype, ""]
            break


def on_skip_member(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Skip descriptors, managers and Django-generated members (documented above)."""
    if isinstance(obj, _NOISE_TYPES):
        return True
    if _GENERATED.fullmatch(name):
        return True
    if name in ("DoesNotExist", "MultipleObjectsReturned", "Meta") and isinstance(obj, type):
        return True
    if name == "config_keys" and what == "class":
        return True  # generated as a table by cm_generated
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the handlers (after napoleon has converted the docstring)."""
    app.connect("autodoc-process-docstring", on_process_docstring, priority=900)
    app.connect("autodoc-skip-member", on_skip_member)
    app.connect("autodoc-process-docstring", protect_inline_colon, priority=100)
    app.connect("autodoc-process-docstring", keep_rtype_in_field_list, priority=950)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
