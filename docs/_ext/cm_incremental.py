"""Editing a page costs only that page: its parents are rewritten only when its toc changed.

After a page is edited, Sphinx also rewrites every page whose toctree lists it
(``env.files_to_rebuild``: here ``index``), because the titles and sections it
shows for that page may have changed. When the edited page's title and section
tree (its toc) are the same as before the edit, those parents would be written
again unchanged; this extension leaves them out of that build. A page whose
title or sections changed still gets its parents rewritten.

The other way round, Sphinx writes too little: every page's sidebar shows the
whole navigation (furo: every page's title, in the toctrees' order), but after
a page's title or toctree changed Sphinx rewrites only that page and its
parents, and the other pages keep showing the old navigation. When a page read
again has a new title or toctree, is new, or a page was removed, every page is
written.

The environment is pickled before ``write-started``; the change made here is
in memory for one write phase only and undone when the build finishes.

The same rule spares viewcode's index of source pages (``_modules/index``),
which viewcode writes on every build: it is written again only when its list of
modules changed, when a page's toc changed, or when it is missing.

The HTML builder also writes the general index (``genindex``) and the domain
indices (``py-modindex``) on every build; both grow with the site. Each is
written again only when what it shows could differ from the file on disk: its
entries (the page's own context), the site's navigation (every page's title
and toc, and the toctrees), the builder's configuration and tags, or the
templates changed; when the file is missing or not the one last written (its
size and modification time are recorded); or when the build writes everything
(``-a``). The records are kept in the doctree directory, so ``-E`` or a fresh
directory writes every index again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.builders import Builder
from sphinx.builders.html import StandaloneHTMLBuilder
from sphinx.environment import BuildEnvironment


def _toc_text(env: BuildEnvironment, docname: str) -> str | None:
    if docname not in env.tocs or docname not in env.titles:
        return None
    return env.titles[docname].astext() + "\0" + env.tocs[docname].pformat()


def _sidebar_text(env: BuildEnvironment, docname: str) -> str | None:
    """What the sidebar of every page shows of ``docname``: its title and its toctrees."""
    if docname not in env.tocs or docname not in env.titles:
        return None
    toctrees = [node.pformat() for node in env.tocs[docname].findall(addnodes.toctree)]
    return "\0".join([env.titles[docname].astext(), *toctrees])


def on_before_read(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Remember the toc and the sidebar entry of each page about to be read again."""
    app._cm_old_tocs = {d: _toc_text(env, d) for d in docnames}  # type: ignore[attr-defined]
    app._cm_old_sidebar = {  # type: ignore[attr-defined]
        d: _sidebar_text(env, d) for d in docnames}


def on_outdated(app: Sphinx, env: BuildEnvironment, added: set, changed: set,
                removed: set) -> list[str]:
    """Note removed pages, and read again the pages whose toctrees listed them.

    The navigation then changed: reading a parent again makes
    :func:`on_write_started` write every page.
    """
    app._cm_removed = set(removed)  # type: ignore[attr-defined]
    return sorted(parent for parent, children in env.toctree_includes.items()
                  if parent not in removed and set(children) & removed)


def navigation_digest(env: BuildEnvironment) -> str:
    """A digest of what the site's navigation is drawn from (every page's title and toc).

    Args:
        env: The build environment, once every page is read.

    Returns:
        The SHA-256 digest, hex.
    """
    digest = hashlib.sha256(env.config.root_doc.encode())
    for docname in sorted(env.found_docs):
        digest.update(b"\0" + docname.encode())
        if docname in env.titles:
            digest.update(b"\1" + env.titles[docname].astext().encode())
        if docname in env.tocs:
            digest.update(b"\2" + env.tocs[docname].pformat().encode())
        digest.update(b"\3" + "\0".join(env.toctree_includes.get(docname, ())).encode())
    return digest.hexdigest()


def on_write_started(app: Sphinx, builder: Builder) -> None:
    """Choose, for this write only, which pages besides the edited ones are written.

    A page whose toc did not change: its parents are left out. A page whose
    title or toctrees changed, or a page added or removed: every page is
    written, because every page's sidebar shows the whole navigation (furo), and
    Sphinx alone would leave the others showing the old one.
    """
    env = builder.env
    old = getattr(app, "_cm_old_tocs", {})
    old_sidebar = getattr(app, "_cm_old_sidebar", {})
    saved: dict[str, Any] = {}
    removed = bool(getattr(app, "_cm_removed", None))
    unchanged = not removed
    sidebar_changed = removed
    for docname, before in old.items():
        if before is not None and before == _toc_text(env, docname):
            saved[docname] = env.files_to_rebuild.pop(docname, None)
        else:
            unchanged = False
        before_sidebar = old_sidebar.get(docname)
        if before_sidebar is None or before_sidebar != _sidebar_text(env, docname):
            sidebar_changed = True
    if sidebar_changed and old:
        everything = set(env.found_docs)
        for docname in old:  # the pages read again are written; with them, all pages
            saved.setdefault(docname, env.files_to_rebuild.get(docname))
            env.files_to_rebuild[docname] = everything
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
            key = hashlib.sha256(build_key(app).encode()).hexdigest()
            if (
                getattr(app, "_cm_tocs_unchanged", False)
                and not getattr(app, "_cm_write_all", False)
                and target.exists()
                and old == f"{digest} {key}"
            ):
                continue
            stamp.write_text(f"{digest} {key}")
        yield pagename, context, template


INDEX_STAMPS = "cm_index_pages.json"


def _is_index(builder: StandaloneHTMLBuilder, pagename: str) -> bool:
    if pagename == "genindex" or pagename.startswith("genindex-"):
        return True
    return any(pagename == name for name, *_rest in builder.domain_indices)


def _file_state(path: Path) -> list[int]:
    try:
        stat = path.stat()
    except OSError:
        return []
    return [stat.st_size, stat.st_mtime_ns]


def build_key(app: Sphinx) -> str:
    """What every page of this build depends on besides its own content.

    The builder, its configuration and tags hashes (those Sphinx keeps in
    ``.buildinfo``), the newest template's modification time and the digest of
    the navigation (:func:`navigation_digest`). Known once every page is read.

    Args:
        app: The Sphinx application.

    Returns:
        A string that differs whenever one of them differs.
    """
    key = getattr(app, "_cm_build_key", None)
    if key is None:
        builder = app.builder
        info = getattr(builder, "build_info", None)
        templates = getattr(builder, "templates", None)
        key = "\0".join([
            builder.name,
            getattr(info, "config_hash", ""),
            getattr(info, "tags_hash", ""),
            repr(templates.newest_template_mtime() if templates else 0),
            getattr(app, "_cm_navigation", "") or navigation_digest(app.env),
        ])
        app._cm_build_key = key  # type: ignore[attr-defined]
    return key


def gate_index_pages(app: Sphinx, builder: StandaloneHTMLBuilder) -> Callable[..., None]:
    """Wrap ``builder.handle_page``: an index page is written only when it would change.

    Args:
        app: The Sphinx application.
        builder: An HTML builder.

    Returns:
        The wrapper, which is also installed as the builder's ``handle_page``.
    """
    original = builder.handle_page
    stamp_file = Path(app.doctreedir) / INDEX_STAMPS
    try:
        old = json.loads(stamp_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    if not isinstance(old, dict):
        old = {}
    new: dict[str, list] = {}
    app._cm_index_stamps = (stamp_file, new)  # type: ignore[attr-defined]

    def handle_page(pagename: str, addctx: dict[str, Any], templatename: str = "page.html",
                    **kwargs: Any) -> None:
        if kwargs.get("outfilename") is not None or not _is_index(builder, pagename):
            original(pagename, addctx, templatename, **kwargs)
            return
        content = repr((templatename, sorted(addctx.items())))
        digest = hashlib.sha256(
            (build_key(app) + "\0" + content).encode()).hexdigest()
        target = Path(builder.get_outfilename(pagename))
        entry = old.get(pagename)
        state = _file_state(target)
        if (not getattr(app, "_cm_write_all", False) and state
                and entry == [digest, *state]):
            new[pagename] = entry  # the file on disk is what this build would write
            return
        original(pagename, addctx, templatename, **kwargs)
        new[pagename] = [digest, *_file_state(target)]

    builder.handle_page = handle_page  # type: ignore[method-assign]
    return handle_page


def on_builder_inited(app: Sphinx) -> None:
    """Put :func:`collect_pages` in viewcode's place; gate the HTML builders' indices."""
    from sphinx.ext import viewcode

    for listener in list(app.events.listeners.get("html-collect-pages", [])):
        if listener.handler is viewcode.collect_pages:
            app.disconnect(listener.id)
            app.connect("html-collect-pages", collect_pages, priority=listener.priority)
    builder = app.builder
    if isinstance(builder, StandaloneHTMLBuilder):
        gate_index_pages(app, builder)
        build_all = builder.build_all

        def build_all_pages() -> None:
            app._cm_write_all = True  # type: ignore[attr-defined]
            build_all()

        builder.build_all = build_all_pages  # type: ignore[method-assign]


def on_env_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Record the navigation's digest (also when no page was read again)."""
    app._cm_navigation = navigation_digest(env)  # type: ignore[attr-defined]
    return []


def on_build_finished(app: Sphinx, exception: BaseException | None) -> None:
    """Put the parents back (the pickled environment never lost them); save index stamps."""
    for docname, parents in getattr(app, "_cm_saved_parents", {}).items():
        if parents is not None:
            app.env.files_to_rebuild[docname] = parents
        else:
            app.env.files_to_rebuild.pop(docname, None)
    stamps = getattr(app, "_cm_index_stamps", None)
    if stamps is not None:
        stamps[0].write_text(json.dumps(stamps[1], sort_keys=True), encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the handlers."""
    app.setup_extension("sphinx.ext.viewcode")
    app.connect("builder-inited", on_builder_inited)
    app.connect("env-before-read-docs", on_before_read)
    app.connect("env-get-outdated", on_outdated)
    app.connect("env-updated", on_env_updated)
    app.connect("write-started", on_write_started)
    app.connect("build-finished", on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
