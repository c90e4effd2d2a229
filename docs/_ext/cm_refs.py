"""Reference policy: our own API stays strict; external targets degrade gracefully.

Runs after intersphinx on ``missing-reference`` (Python domain only):

1. A short or module-relative name (``ValidationError`` in a ``Raises:`` section,
   ``ExecutorHost`` in a type hint) is qualified through the runtime namespace
   of the module (and class) being documented, or matched against our own
   documented objects.
2. A target inside ``container_manager`` is resolved against our documented
   objects; when that fails the reference is left missing, so ``-n -W`` fails the
   build. Nothing about our own API is ever suppressed.
3. A target in an external, importable package (Python, Django, docker-py, ...) is
   looked up in the intersphinx inventories under its qualified name; when no
   inventory has it (offline, or an object the project does not index) it is
   rendered as plain code instead of warning.
4. On Django 5.2, a target in a module that needs Django 6
   (:data:`DJANGO_6_MODULES`) is rendered as plain code: that module is not
   documented in such a build.
5. Anything else (a bare name that is neither ours nor a builtin, a module that
   does not exist) is left missing: it is a typo, and the build fails.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import importlib.util
import sys
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

OUR_PACKAGE = "container_manager"
_CONSTANTS = {"None", "True", "False", "Ellipsis", "NotImplemented"}


def _qualified_name(obj: Any) -> str | None:
    """Return ``module.qualname`` of a class/function/module object, if it has one."""
    if isinstance(obj, type(sys)):
        return obj.__name__
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return None


def load_module(name: str | None) -> Any:
    """The module ``name``, imported if needed; None when there is no such module.

    References are resolved while pages are written. In an incremental build the
    pages whose ``automodule`` imported a module may not have been read again, and
    in a parallel build (``-j``) they were read in other processes: the module is
    then not in ``sys.modules`` of this process yet.
    """
    if not name:
        return None
    module = sys.modules.get(name)
    if module is not None:
        return module
    try:
        return importlib.import_module(name)
    except Exception:  # not a module (``pkg.Class``), or one that cannot be imported
        return None


@functools.cache
def source_imports(modname: str) -> dict[str, str]:
    """Names bound by ``from X import Y`` anywhere in a module's source (functions and
    ``TYPE_CHECKING`` blocks included): local name -> ``X.Y``."""
    module = load_module(modname)
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py"):
        return {}
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError):
        return {}
    names: dict[str, str] = {}
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
            for alias in stmt.names:
                names.setdefault(alias.asname or alias.name, f"{stmt.module}.{alias.name}")
    return names


def qualify(target: str, modname: str | None, classname: str | None) -> str | None:
    """Qualify ``target`` through the namespace of the module being documented."""
    module = load_module(modname)
    if module is None:
        return None
    head, _, rest = target.partition(".")
    imported = source_imports(module.__name__).get(head)
    scopes: list[Any] = []
    if classname:
        obj: Any = module
        for part in classname.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            scopes.append(obj)
    scopes.append(module)
    for scope in scopes:
        if head in getattr(scope, "__dict__", {}) or (scope is not module and hasattr(scope, head)):
            value = getattr(scope, head)
            if isinstance(value, (type, type(sys))) or callable(value):
                base = _qualified_name(value)
                if base:
                    return f"{base}.{rest}" if rest else base
    if imported:
        return f"{imported}.{rest}" if rest else imported
    return None


def our_objects(env: BuildEnvironment) -> dict[str, Any]:
    """Our documented Python objects: full name -> object entry."""
    objects = env.domains.python_domain.objects
    return {k: v for k, v in objects.items() if k.split(".")[0] == OUR_PACKAGE}


def match_ours(env: BuildEnvironment, target: str) -> str | None:
    """The shortest documented name of ours that ends with ``.target``, if any."""
    suffix = "." + target
    names = [name for name in our_objects(env) if name.endswith(suffix)]
    return min(names, key=len) if names else None


def is_external(target: str) -> bool:
    """Whether ``target`` names something outside our package that really exists."""
    head = target.split(".")[0]
    if head == OUR_PACKAGE:
        return False
    if head in _CONSTANTS or hasattr(builtins, head):
        return True
    if "." not in target:
        return False  # an unknown bare name is a typo, not an external object
    try:
        return importlib.util.find_spec(head) is not None
    except (ImportError, ValueError):
        return False


def _resolve_ours(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element, full: str
) -> nodes.Element | None:
    domain = env.domains.python_domain
    new = node.deepcopy()
    new["reftarget"] = full
    found = domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], full, new, contnode
    )
    if found is None:
        # e.g. :class: used for an attribute: try any Python object type.
        for _role, result in domain.resolve_any_xref(
            env, node["refdoc"], app.builder, full, new, contnode
        ):
            return result
    return found


def _source_module(node: pending_xref) -> str | None:
    """The module that really holds the documented object (not the re-exporting one)."""
    source = node.source or ""
    if ":docstring of " in source:
        dotted = source.partition(":docstring of ")[2]
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            name = ".".join(parts[:i])
            if load_module(name) is not None:
                return name
    modname, classname = node.get("py:module"), node.get("py:class")
    obj: Any = load_module(modname)
    for part in (classname or "").split(".") if classname else []:
        obj = getattr(obj, part, None)
    return getattr(obj, "__module__", None) if classname else None


#: Our modules that need Django 6 (``django.tasks``): on Django 5.2 they are not documented.
DJANGO_6_MODULES = ("container_manager.tasks",)


#: Examples that use ``django.tasks`` (directly or through our task modules), and the
#: guide that shows them: on Django 5.2 the doctest builder skips them.
DJANGO_6_EXAMPLES = (
    *DJANGO_6_MODULES,
    "container_manager.task_signals.connect",
    "container_manager.management.commands.run_container_task",
    "container_manager.checks.check_task_hosts",
)
DJANGO_6_DOCUMENTS = ("guides/tasks",)


def example_needs_newer_django(dotted: str) -> bool:
    """Whether the examples of ``dotted`` (a docstring's object or a document) need Django 6."""
    import django

    return django.VERSION < (6, 0) and (dotted in DJANGO_6_DOCUMENTS or any(
        dotted == m or dotted.startswith(m + ".") for m in DJANGO_6_EXAMPLES))


def needs_newer_django(target: str) -> bool:
    """Whether ``target`` lives in a module this build's Django cannot import (Django 5.2)."""
    import django

    return django.VERSION < (6, 0) and any(
        target == m or target.startswith(m + ".") for m in DJANGO_6_MODULES)


def on_missing_reference(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    """Apply the policy described in the module docstring."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    full = target
    if target.split(".")[0] != OUR_PACKAGE:
        full = (
            qualify(target, node.get("py:module"), node.get("py:class"))
            or qualify(target, _source_module(node), None)
            or match_ours(env, target)
            or target
        )
    if full.split(".")[0] == OUR_PACKAGE:
        found = _resolve_ours(app, env, node, contnode, full)
        if found is None and needs_newer_django(full):
            return contnode  # documented only when the docs are built with Django 6
        return found  # None: strict warning
    if full != target:
        from sphinx.ext.intersphinx import missing_reference

        new = node.deepcopy()
        new["reftarget"] = full
        found = missing_reference(app, env, new, contnode)
        if found is not None:
            return found
    if is_external(full):
        return contnode
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the handler after intersphinx's own."""
    app.setup_extension("sphinx.ext.intersphinx")
    app.connect("missing-reference", on_missing_reference, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
