"""API.md: plain Markdown for GitHub and PyPI, and every link names a real object or page.

API.md links to the hosted reference; in the built site those links are turned
into links inside the site (docs/_ext/cm_links.py). Each link must resolve, in
the built site, to an existing page and, for an anchor, to the id of an object
that the reference documents (it is in ``objects.inv``).
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

from tests.docs.conftest import ROOT
from tests.docs.site_links import read_page

HOSTED = "https://django-container-manager.readthedocs.io/en/latest/"
REPOSITORY = "https://github.com/container-manager/django-container-manager/blob/main/"
API = ROOT / "API.md"
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _links() -> list[tuple[str, str]]:
    return LINK.findall(API.read_text(encoding="utf-8"))


def _inventory(html: Path) -> dict[str, str]:
    """Anchor -> object name, for every object in the site's objects.inv."""
    data = (html / "objects.inv").read_bytes()
    body = zlib.decompress(data.split(b"\n", 4)[4]).decode()
    anchors = {}
    for line in body.splitlines():
        name, _role, _prio, uri, _display = line.split(" ", 4)
        uri = uri.replace("$", name)
        anchors[uri] = name
    return anchors


def test_api_md_is_plain_markdown():
    text = API.read_text(encoding="utf-8")
    roles = re.findall(r"\{[\w:-]+\}`[^`]*`", text)
    assert not roles, f"MyST/Sphinx role syntax shows as raw text on GitHub and PyPI: {roles[:5]}"
    assert "```{" not in text and ":::" not in text  # no directives either
    assert len(_links()) > 60


def test_every_api_md_link_resolves_in_the_built_site(built_html: Path):
    inventory = _inventory(built_html)
    problems, objects = [], 0
    for text, url in _links():
        if url.startswith(REPOSITORY):
            if not (ROOT / url.removeprefix(REPOSITORY)).exists():
                problems.append(f"{text}: no file {url.removeprefix(REPOSITORY)} in the repository")
            continue
        if not url.startswith(HOSTED):
            problems.append(f"{text}: {url} is neither the hosted reference nor a repository file")
            continue
        relative = url.removeprefix(HOSTED)
        page, _, anchor = relative.partition("#")
        path = built_html / page
        if not path.is_file():
            problems.append(f"{text}: no page {page} in the built site")
            continue
        if anchor:
            objects += 1
            if anchor not in read_page(path).ids:
                problems.append(f"{text}: no id {anchor!r} on {page}")
            elif relative not in inventory:
                problems.append(f"{text}: {relative} is not a documented object (objects.inv)")
            elif (
                text.strip("`").removesuffix("()").rsplit(".", 1)[-1]
                != inventory[relative].rsplit(".", 1)[-1]
            ):
                problems.append(f"{text}: links to {inventory[relative]}, another object")
    assert objects > 50, objects
    assert not problems, "\n".join(problems)


def test_api_page_of_the_site_links_inside_the_site(built_html: Path):
    page = read_page(built_html / "api.html")
    hosted = [url for _tag, url in page.links if url.startswith(HOSTED)]
    assert not hosted, hosted[:5]
    internal = [url for _tag, url in page.links if url.startswith("reference/")]
    assert len(internal) >= len([u for _t, u in _links() if "/reference/" in u])
