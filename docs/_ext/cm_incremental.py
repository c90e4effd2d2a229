"""Editing a page costs only that page: its parents are rewritten only when its toc changed.

After a page is edited, Sphinx also rewrites every page whose toctree lists it
(``env.files_to_rebuild``: here ``index``), because the titles and sections it
shows for that page may have changed. When the edited page's title and section
tree (its toc) are the same as before the edit, those parents would be written
again unchanged; this extension leaves them out of that build. A page whose
title or sections changed still gets its parents rewritten.

The environment is pickled before ``write-started``; the change made here is
in memory for one write phase only and undone when the build finishes.

The same rule spares viewcode's index of source pages (``_modules/index``),
which viewcode writes on every build: it is written again only when its list of
modules changed, when a page's toc changed, or when it is missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.builders import Builder
from sphinx.environment import BuildEnvironment


def _toc_text(env: BuildEnvironment, docname: str) -> str | None:
    if docname not in env.tocs or docname not in env.titles:
        return None
    return env.titles[docname].astext() + "\0" + env.tocs[docname].pformat()


def on_before_read(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Remember the toc of each page about to be read again."""
    app._cm_old_tocs = {d: _toc_text(env, d) for d in docnames}  # type: ignore[attr-defined]


def on_write_started(app: Sphinx, builder: Builder) -> None:
    """Drop, for this write only, the parents of pages whose toc did not change."""
    env = builder.env
    old = getattr(app, "_cm_old_tocs", {})
    saved = {}
    unchanged = True
    for docname, before in old.items():
        if before is not None and before == _toc_text(env, docname):
            saved[docname] = env.files_to_rebuild.pop(docname, None)
        else:
            unchanged = False
    app._cm_saved_parents = saved  # type: ignore[attr-defined]
    app._cm_tocs_unchanged = unchanged  # type: ignore[attr-defined]


MODULE_INDEX = "_modules/index"


def collect_pages(app: Sphinx) -> Iterator[tuple[str, dict[str, Any], str]]:
    """viewcode's pages, without ``_modules/index`` when it would be written unchanged."""
    from sphinx.ext import viewcode

    stamp = Path(app.doctreedir) / "cm_module_index.sha256"
    for pagename, context, template in viewcode.collect_pages(app):
        if pagename == MODULE_INDEX:
            digest = hashlib.sha256(str(context.get("body", "")).encode()).hexdigest()
            target = Path(app.outdir) / (MODULE_INDEX + app.builder.out_suffix)
            old = stamp.read_text() if stamp.exists() else ""
            if (
                getattr(app, "_cm_tocs_unchanged", False)
                and target.exists()
                and old == f"{digest} {app.builder.name}"
            ):
                continue
            stamp.write_text(f"{digest} {app.builder.name}")
        yield pagename, context, template


def on_builder_inited(app: Sphinx) -> None:
    """Put :func:`collect_pages` in the place of viewcode's own listener."""
    from sphinx.ext import viewcode

    for listener in list(app.events.listeners.get("html-collect-pages", [])):
        if listener.handler is viewcode.collect_pages:
            app.disconnect(listener.id)
            app.connect("html-collect-pages", collect_pages, priority=listener.priority)


def on_build_finished(app: Sphinx, exception: BaseException | None) -> None:
    """Put the parents back (the pickled environment never lost them)."""
    for docname, parents in getattr(app, "_cm_saved_parents", {}).items():
        if parents is not None:
            app.env.files_to_rebuild[docname] = parents


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the handlers."""
    app.setup_extension("sphinx.ext.viewcode")
    app.connect("builder-inited", on_builder_inited)
    app.connect("env-before-read-docs", on_before_read)
    app.connect("write-started", on_write_started)
    app.connect("build-finished", on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
