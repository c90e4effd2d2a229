"""Sphinx configuration of the container_manager documentation.

Build strictly with ``nox -s docs`` (``sphinx-build -n -W --keep-going``); run every
example with ``nox -s doctest``. Django is set up here, before autodoc imports
anything, with the in-memory settings of ``docs/docs_settings.py``.
"""

from __future__ import annotations

import doctest
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS), str(DOCS / "_ext")]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docs_settings")
import django  # noqa: E402

django.setup()

import container_manager  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "django-container-manager"
author = "container_manager developers"
copyright = "2025, container_manager developers"
release = container_manager.__version__
version = release
REPOSITORY = "https://github.com/container-manager/django-container-manager"

# -- Extensions --------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_copybutton",
    "notfound.extension",
    "sphinxext.opengraph",
    # local extensions (docs/_ext)
    "cm_refs",
    "cm_models",
    "cm_generated",
    "cm_doctest",
    "cm_layers",
    "cm_links",
    "cm_viewcode",
    "cm_proofs",
    "cm_bench",
    "cm_values",
    "cm_guarantees",
    "cm_numbers",
    "cm_incremental",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
nitpicky = True
# API objects are not toctree entries: the navigation lists pages and sections,
# and each reference page keeps its own index of objects. (Furo renders the whole
# navigation on every page, so thousands of object entries also slowed the build.)
toc_object_entries = False
# Keep quotes as typed: help texts show JSON ("exec form") and shell commands.
smartquotes = False

# -- autodoc / napoleon / typehints -----------------------------------------
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_class_signature = "separated"
autodoc_typehints = "signature"  # sphinx-autodoc-typehints moves them into the description
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False  # one "Returns" block, never a second "Return type" block
napoleon_use_ivar = False  # Attributes: become targets (:attr:`config_keys`)
napoleon_attr_annotations = True
typehints_document_rtype = True
typehints_use_rtype = False  # the return type goes into "Returns", not its own block
typehints_defaults = "comma"
# The models import stub-only names under TYPE_CHECKING (django-types' RelatedManager,
# for editors); they do not exist at run time. sphinx-autodoc-typehints >= 3.7 skips
# such imports silently; 3.6, the last release for Python 3.11, warns. Same result on both.
suppress_warnings = ["sphinx_autodoc_typehints.guarded_import"]
always_use_bars_union = True

# -- Cross-references --------------------------------------------------------
# Each inventory has a small local fallback (docs/_inventories) so that the build
# works offline; docs/_ext/cm_refs.py keeps our own references strict.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", (None, "_inventories/python.inv")),
    "django": (
        "https://docs.djangoproject.com/en/stable/",
        ("https://docs.djangoproject.com/en/stable/_objects/", "_inventories/django.inv"),
    ),
    "docker": ("https://docker-py.readthedocs.io/en/stable/", (None, "_inventories/docker.inv")),
}
intersphinx_timeout = 5
intersphinx_disabled_reftypes = ["std:doc"]

# -- MyST --------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# -- doctest -----------------------------------------------------------------
# Examples use the model names without importing them, like the pytest conftest.
# cm_doctest migrates the database once and empties it before every document, and
# holds the shared fixtures: unreachable_docker, unreachable_cloudrun, mock_host().
doctest_global_setup = """
from container_manager.models import (
    ContainerExecution, ContainerJob, EnvironmentVariableTemplate, ExecutorHost,
)
import cm_doctest as _cm_doctest
from cm_doctest import mock_host
_cm_doctest.reset_database()
unreachable_docker = _cm_doctest.unreachable_docker_host()
unreachable_cloudrun = _cm_doctest.unreachable_cloudrun_host()
"""
# Sphinx's default also sets IGNORE_EXCEPTION_DETAIL, under which an example's shown
# exception message is never compared: stale error texts passed. Messages are part of
# the documented behaviour (they name the field, line and rule), so they are checked.
# tests/docs/test_doctest_flags.py fails if exception detail is ignored again.
doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1
doctest_test_doctest_blocks = "default"
doctest_show_successes = False

# -- HTML --------------------------------------------------------------------
html_theme = "furo"
html_title = f"django-container-manager {release}"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"
html_baseurl = os.environ.get("READTHEDOCS_CANONICAL_URL", "")
html_theme_options = {
    "source_repository": REPOSITORY,
    "source_branch": "main",
    "source_directory": "docs/",
    "navigation_with_keys": True,
}
html_context = {"display_github": True}

# 404 page (sphinx-notfound-page): absolute links work from any missing URL.
if os.environ.get("READTHEDOCS"):
    notfound_urls_prefix = "/{}/{}/".format(
        os.environ.get("READTHEDOCS_LANGUAGE", "en"), os.environ.get("READTHEDOCS_VERSION", "latest")
    )
else:
    notfound_urls_prefix = "/"

# OpenGraph
ogp_site_url = html_baseurl or "https://django-container-manager.readthedocs.io/en/latest/"
ogp_site_name = "django-container-manager"
ogp_enable_meta_description = True

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
