"""The public API that the documentation must cover: modules, and their objects."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any

#: Modules with a reference page (docs/reference/*.rst).
PUBLIC_MODULES = [
    "container_manager",
    "container_manager.admin",
    "container_manager.apps",
    "container_manager.checks",
    "container_manager.claiming",
    "container_manager.conf",
    "container_manager.config_keys",
    "container_manager.envfile",
    "container_manager.executors",
    "container_manager.executors.base",
    "container_manager.executors.errors",
    "container_manager.executors.mock",
    "container_manager.executors.docker",
    "container_manager.executors.docker_hardening",
    "container_manager.executors.cloudrun",
    "container_manager.executors.cloudrun.errors",
    "container_manager.executors.cloudrun.executor",
    "container_manager.executors.cloudrun.limits",
    "container_manager.executors.cloudrun.logs",
    "container_manager.lifecycle",
    "container_manager.logcap",
    "container_manager.logfollow",
    "container_manager.management.commands.container_logs",
    "container_manager.metrics",
    "container_manager.metrics_export",
    "container_manager.management.commands.process_container_jobs",
    "container_manager.management.commands.cleanup_containers",
    "container_manager.numbers",
    "container_manager.jsonvalues",
    "container_manager.management.commands.run_container_task",
    "container_manager.models.execution",
    "container_manager.models.host",
    "container_manager.models.job",
    "container_manager.models.managers",
    "container_manager.models.template",
    "container_manager.operations",
    "container_manager.orphans",
    "container_manager.retry",
    "container_manager.task_envelope",
    "container_manager.task_signals",
    "container_manager.tasks",
    "container_manager.validators",
    "container_manager.worker",
]


def _own(obj: Any, module: str) -> bool:
    return getattr(obj, "__module__", None) == module


def public_objects() -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted name, object)`` for every public class, function, method and property.

    Magic methods (``__str__``...) and private names are left out, like interrogate's
    configuration; Django-generated members are not defined in our modules' classes.
    """
    for modname in PUBLIC_MODULES:
        try:
            module = importlib.import_module(modname)
        except ImportError:
            continue
        for name, obj in vars(module).items():
            if name.startswith("_") or not _own(obj, modname):
                continue
            if inspect.isfunction(obj):
                yield f"{modname}.{name}", obj
            elif inspect.isclass(obj):
                yield f"{modname}.{name}", obj
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or attr == "Meta":
                        continue
                    func = member
                    if isinstance(member, (classmethod, staticmethod)):
                        func = member.__func__
                    elif isinstance(member, property):
                        func = member.fget
                    elif hasattr(member, "func") and hasattr(member, "attrname"):  # cached_property
                        func = member.func
                    if inspect.isfunction(func) and _own(func, modname):
                        yield f"{modname}.{name}.{attr}", func


def has_example(obj: Any) -> bool:
    """Whether the object's own docstring holds a ``>>>`` example."""
    return ">>>" in (inspect.getdoc(obj) or "") and ">>>" in (obj.__doc__ or "")
