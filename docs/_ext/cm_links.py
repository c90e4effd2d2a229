"""Links to the hosted documentation become links inside the site being built.

API.md (and the README) are read on GitHub and PyPI, where only absolute links
work, so they link to the hosted site (:data:`HOSTED`). When such a page is
rendered in the site, every link that starts with :data:`HOSTED` is turned into
a relative link to the same page and anchor of this build, so that it stays in
the version (and on the machine) the reader is on. A link to a page that this
build does not have, or to an anchor that names no documented object, is a
warning (``-W`` fails the build).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The hosted site, as API.md links to it.
HOSTED = "https://django-container-manager.readthedocs.io/en/latest/"

_GENERATED_PAGES = {"genindex", "py-modindex", "search"}


def hosted_target(uri: str) -> tuple[str, str] | None:
    """``(docname, anchor)`` of a link into the hosted site, or None for other links."""
    if not uri.startswith(HOSTED):
        return None
    parts = urlsplit(uri[len(HOSTED):])
    path = parts.path or "index.html"
    if path.endswith("/"):
        path += "index.html"
    return path.removesuffix(".html"), parts.fragment


def _anchor_known(app: Sphinx, docname: str, anchor: str) -> bool:
    """Whether ``anchor`` names a Python object (or module) documented on ``docname``."""
    domain = app.env.domains.python_domain
    entry = domain.objects.get(anchor)
    if entry is not None and entry.docname == docname and entry.node_id == anchor:
        return True
    if anchor.startswith("module-"):
        module = domain.modules.get(anchor.removeprefix("module-"))
        return module is not None and module.docname == docname
    return False


def on_doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Check and rewrite every link into the hosted site."""
    for ref in doctree.findall(nodes.reference):
        target = hosted_target(ref.get("refuri", ""))
        if target is None:
            continue
        page, anchor = target
        where = ref.source or app.env.doc2path(docname)
        if page not in app.env.all_docs and page not in _GENERATED_PAGES:
            logger.warning("link to %s: this site has no page %r", ref["refuri"], page,
                           location=(where, ref.line))
            continue
        if anchor and not _anchor_known(app, page, anchor):
            logger.warning("link to %s: %r is not an object documented on %s", ref["refuri"],
                           anchor, page, location=(where, ref.line))
            continue
        if app.builder.format != "html":
            continue
        uri = app.builder.get_relative_uri(docname, page)
        ref["refuri"] = uri + (f"#{anchor}" if anchor else "")
        ref["internal"] = True


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the handler."""
    app.connect("doctree-resolved", on_doctree_resolved)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
