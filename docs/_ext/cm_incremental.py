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

The HTML builder writes some pages on every build, and they grow with the site:
the general index (``genindex``), the domain indices (``py-modindex``), the
search page, the 404 page and viewcode's index of source pages
(``_modules/index``). Each such generated page is written again only when
what it is drawn from changed: its template and context, the site's navigation
(every page's title and toc, and the toctrees), the builder's configuration and
tags, or the templates; or when the file is missing or not the one last written
(its size and modification time are recorded); or when the build writes
everything (``-a``). viewcode's source page of a module is judged the same way,
by the code, the "[docs]" back-links and the parent modules it shows, instead
of viewcode's own comparison of file times (which misses back-links that moved).
The records are kept in the doctree directory, so ``-E`` or a fresh directory
writes every page again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.builders import Builder
from sphinx.builders.html import StandaloneHTMLBuilder
from sphinx.environment import CONFIG_OK, BuildEnvironment


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

    A new environment, or one read again for a changed configuration, writes
    every generated page too (:class:`PageStamps`).

    The navigation then changed: reading a parent again makes
    :func:`on_write_started` write every page.
    """
    app._cm_removed = set(removed)  # type: ignore[attr-defined]
    if env.config_status != CONFIG_OK:  # new, or a changed configuration or extensions
        app._cm_write_all = True  # type: ignore[attr-defined]
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


PAGE_STAMPS = "cm_page_stamps.json"


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


def plain_text(*values: Any) -> str | None:
    """``values`` as JSON, the same text in every process, or None when they are not plain.

    Plain: strings, numbers, booleans, None, and lists, tuples (named ones too) and
    dicts of them. Not sets (their order follows the hash seed) nor other objects,
    whose text would not show all of what a page is drawn from.
    """
    try:
        return json.dumps(values, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return None


class PageStamps:
    """Which generated pages on disk are what this build would write.

    For each page written, the digest of what it was written from (the build key
    and the page's own inputs) and the file's size and modification time, kept in
    the doctree directory. A page is current when its digest is the same and the
    file is still the one written then; ``-a`` writes every page again.
    """

    def __init__(self, app: Sphinx) -> None:
        """Read the stamps of the previous build (none after ``-E`` or in a new folder)."""
        self.app = app
        self.file = Path(app.doctreedir) / PAGE_STAMPS
        try:
            old = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        self.old: dict[str, list] = old if isinstance(old, dict) else {}
        self.new: dict[str, list] = {}
        self.pending: dict[str, str] = {}

    def _target(self, pagename: str) -> Path:
        return Path(self.app.builder.get_outfilename(pagename))  # type: ignore[attr-defined]

    def current(self, pagename: str, inputs: str) -> bool:
        """Whether the page on disk was written from ``inputs``; if not, expect it written."""
        digest = hashlib.sha256((build_key(self.app) + "\0" + inputs).encode()).hexdigest()
        state = _file_state(self._target(pagename))
        if (not getattr(self.app, "_cm_write_all", False) and state
                and self.old.get(pagename) == [digest, *state]):
            self.new[pagename] = self.old[pagename]
            return True
        self.pending[pagename] = digest
        return False

    def written(self, pagename: str) -> None:
        """Record a page just written, if :meth:`current` was asked about it."""
        digest = self.pending.pop(pagename, None)
        if digest is not None:
            self.new[pagename] = [digest, *_file_state(self._target(pagename))]

    def save(self) -> None:
        """Keep the stamps of the pages written or found current in this build."""
        self.file.write_text(json.dumps(self.new, sort_keys=True), encoding="utf-8")


def _gated(pagename: str) -> bool:
    """Generated pages judged by their context; module and proof pages judge themselves."""
    if pagename.startswith(PROOF_PAGES):
        return False
    return not pagename.startswith(MODULE_PAGES) or pagename == MODULE_INDEX


MODULE_PAGES = "_modules/"
MODULE_INDEX = "_modules/index"
PROOF_PAGES = "_proofs/"


def gate_generated_pages(app: Sphinx, builder: StandaloneHTMLBuilder) -> PageStamps:
    """Wrap ``builder.handle_page``: a generated page is written only when it would change.

    Generated pages are those that are not a source document: the general and
    domain indices, the search page, the 404 page, viewcode's index. Each is
    judged by its template and context (when :func:`plain_text` can show it;
    otherwise it is written) and the build key.

    Args:
        app: The Sphinx application.
        builder: An HTML builder.

    Returns:
        The stamps, also kept as ``app._cm_page_stamps``.
    """
    original = builder.handle_page
    stamps = PageStamps(app)
    app._cm_page_stamps = stamps  # type: ignore[attr-defined]

    def handle_page(pagename: str, addctx: dict[str, Any], templatename: str = "page.html",
                    **kwargs: Any) -> None:
        generated = (kwargs.get("event_arg") is None and kwargs.get("outfilename") is None
                     and pagename not in app.env.all_docs and _gated(pagename))
        inputs = plain_text(templatename, addctx) if generated else None
        if inputs is not None and stamps.current(pagename, inputs):
            return
        original(pagename, addctx, templatename, **kwargs)
        stamps.written(pagename)

    builder.handle_page = handle_page  # type: ignore[method-assign]
    return stamps


def module_page_needed(app: Sphinx, modname: str) -> bool:
    """viewcode's question, answered from what the page shows rather than file times.

    A module's source page shows the code and tags that viewcode recorded when it
    read the documentation, the "[docs]" back-links (object, page, module path) and
    links to the parent modules that have pages. Sphinx alone compares the
    module's file time with the page's and so misses back-links that moved.
    """
    modules = app.env._viewcode_modules  # type: ignore[attr-defined]
    entry = modules.get(modname)
    stamps = getattr(app, "_cm_page_stamps", None)
    if not entry or stamps is None:
        return True
    code, tags, used, refname = entry
    parents = sorted(m for m in modules if modname.startswith(m + "."))
    from cm_viewcode import other_paths  # back-links corrected in the page

    inputs = plain_text(hashlib.sha256(code.encode()).hexdigest(), tags, used, refname, parents,
                        other_paths(app, modname))
    return inputs is None or not stamps.current(MODULE_PAGES + modname.replace(".", "/"), inputs)


def collect_pages(app: Sphinx) -> Iterator[tuple[str, dict[str, Any], str]]:
    """viewcode's pages, each module's written only when :func:`module_page_needed`."""
    from sphinx.ext import viewcode

    decide = viewcode.should_generate_module_page
    viewcode.should_generate_module_page = module_page_needed
    try:
        yield from viewcode.collect_pages(app)
    finally:
        viewcode.should_generate_module_page = decide


def on_builder_inited(app: Sphinx) -> None:
    """Put :func:`collect_pages` in viewcode's place; gate the HTML builders' generated pages."""
    from sphinx.ext import viewcode

    for listener in list(app.events.listeners.get("html-collect-pages", [])):
        if listener.handler is viewcode.collect_pages:
            app.disconnect(listener.id)
            app.connect("html-collect-pages", collect_pages, priority=listener.priority)
    builder = app.builder
    if isinstance(builder, StandaloneHTMLBuilder):
        gate_generated_pages(app, builder)
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
    """Put the parents back (the pickled environment never lost them); save page stamps."""
    for docname, parents in getattr(app, "_cm_saved_parents", {}).items():
        if parents is not None:
            app.env.files_to_rebuild[docname] = parents
        else:
            app.env.files_to_rebuild.pop(docname, None)
    stamps = getattr(app, "_cm_page_stamps", None)
    if stamps is not None:
        stamps.save()


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
