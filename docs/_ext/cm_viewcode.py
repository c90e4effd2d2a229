"""viewcode's "[docs]" back-links: the same, right, links in serial and parallel builds.

``sphinx.ext.viewcode`` keeps, per source module, one module path under which it
links back to the documentation (the ``refname`` of its entry): the module path
of the first documented object that it met in that module. Which object comes
first depends on the reading order, which a parallel build (``-j``) changes, and
an object re-exported elsewhere (``container_manager.admin`` imports the models)
can win: the back-links then point at anchors that do not exist. In a parallel
build viewcode also keeps the entries of modules outside the package that its
workers looked at (``re``, Django's descriptors), and writes source pages for them.

After the environment is complete (``env-updated``), this extension sets each
entry's module path from the objects the module really documents (found in the
Python domain, on the page viewcode links to) and drops the entries of modules
outside the package that document nothing.

A module may document most of its objects under one path and a few under
another (``container_manager.models.managers`` documents its managers as
``container_manager.models.X`` but ``PreparedMove`` under its own module path).
viewcode has room for one path per module; the back-links of the other objects
are corrected in the module's source page (``html-page-context``).
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

OUR_PACKAGE = "container_manager"


def documented_prefix(
    env: BuildEnvironment,
    used: dict[str, str],
    by_suffix: dict[tuple[str, str], list[str]] | None = None,
) -> str | None:
    """The module path under which the objects of ``used`` (name -> page) are documented.

    ``by_suffix`` is :func:`suffix_index` of the Python domain, built once per call of
    :func:`on_env_updated` rather than searched again for every object.
    """
    if by_suffix is None:
        by_suffix = suffix_index(env)
    prefixes: dict[str, int] = {}
    for fullname, docname in used.items():
        for prefix in by_suffix.get((fullname, docname), ()):
            prefixes[prefix] = prefixes.get(prefix, 0) + 1
    return max(prefixes, key=lambda p: (prefixes[p], p)) if prefixes else None


def suffix_index(env: BuildEnvironment) -> dict[tuple[str, str], list[str]]:
    """(dotted suffix of a documented name, its page) -> the prefixes it follows.

    ``container_manager.models.ContainerJob.launch`` on ``reference/models`` gives
    ``("ContainerJob.launch", "reference/models") -> ["container_manager.models"]``,
    ``("launch", "reference/models") -> ["container_manager.models.ContainerJob"]`` and
    so on: every way to split the name into a non-empty prefix and suffix.
    """
    index: dict[tuple[str, str], list[str]] = {}
    for name, entry in env.domains.python_domain.objects.items():
        parts = name.split(".")
        for i in range(1, len(parts)):
            index.setdefault((".".join(parts[i:]), entry.docname), []).append(
                ".".join(parts[:i]))
    return index


def on_env_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Fix the module path of every viewcode entry; drop foreign entries without objects.

    Also notes, per module, the objects documented under another path than the
    module's (:func:`other_paths`).
    """
    modules = getattr(env, "_viewcode_modules", None)
    if not modules:
        return []
    by_suffix = suffix_index(env)
    links: dict[str, dict[str, str]] = {}
    for modname, entry in list(modules.items()):
        if not entry:
            continue
        code, tags, used, refname = entry
        if not used:
            if modname.split(".")[0] != OUR_PACKAGE:
                del modules[modname]
            continue
        prefix = documented_prefix(env, used, by_suffix)
        if prefix and prefix != refname:
            modules[modname] = (code, tags, used, prefix)
        chosen = prefix or refname
        others = {
            name: min(candidates)
            for name, docname in used.items()
            if (candidates := by_suffix.get((name, docname))) and chosen not in candidates
        }
        if others:
            links[modname] = others
    app._cm_viewcode_links = links  # type: ignore[attr-defined]
    return []


def other_paths(app: Sphinx, modname: str) -> dict[str, str]:
    """The objects of ``modname`` documented under another module path -> that path."""
    return getattr(app, "_cm_viewcode_links", {}).get(modname, {})


def on_page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                    doctree: Any) -> None:
    """Point the back-links of those objects at the path they are documented under."""
    if not pagename.startswith("_modules/") or "body" not in context:
        return
    modname = pagename.removeprefix("_modules/").replace("/", ".")
    entry = getattr(app.env, "_viewcode_modules", {}).get(modname)
    if not entry:
        return
    body = context["body"]
    for name, prefix in other_paths(app, modname).items():
        body = body.replace(f'#{entry[3]}.{name}"', f'#{prefix}.{name}"')
    context["body"] = body


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the handler (viewcode itself is loaded by conf.py)."""
    app.setup_extension("sphinx.ext.viewcode")
    app.connect("env-updated", on_env_updated)
    app.connect("html-page-context", on_page_context)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
