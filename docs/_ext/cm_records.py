"""Per-page records that a checking extension keeps on the Sphinx build environment.

The checks (``cm_bench``, ``cm_guarantees``, ``cm_numbers``, ``cm_proofs``,
``cm_values``) each note, while a page is read, what the page quotes, in a dict
from docname to that page's records, held as an attribute of the environment so
that it is pickled with it and an incremental build still has the records of the
pages it does not read again. :func:`track_page_records` registers what keeps
that dict right:

* it is created when the builder starts and again before reading (an environment
  loaded from an older pickle may not have it);
* a page's records are dropped when Sphinx purges the page (it is read again, or
  it was removed);
* in a parallel read (``-j``), the records of the pages a reader process read are
  merged into the main environment.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment


def track_page_records(app: Sphinx, name: str) -> None:
    """Keep ``env.<name>``, a dict from docname to that page's records.

    Args:
        app: The Sphinx application of the extension's ``setup``.
        name: The environment attribute that holds the dict (``"cm_bench"``).
    """

    def init(env: BuildEnvironment) -> None:
        if not hasattr(env, name):
            setattr(env, name, {})

    def purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
        getattr(env, name).pop(docname, None)

    def merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: Any) -> None:
        for docname in docnames:
            if docname in getattr(other, name):
                getattr(env, name)[docname] = getattr(other, name)[docname]

    app.connect("builder-inited", lambda app: init(app.env))
    app.connect("env-before-read-docs", lambda app, env, docnames: init(env))
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
