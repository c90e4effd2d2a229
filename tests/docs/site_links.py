"""Read a built HTML site: every page's ids and the links it makes.

Used by the link check (every internal link and ``#anchor`` of the site resolves)
and by the API.md check (every link of the overview names a real object or page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Page:
    """The ids (link targets) of one HTML page and the links it makes."""

    ids: set[str] = field(default_factory=set)
    links: list[tuple[str, str]] = field(default_factory=list)  # (tag, url)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.page.ids.add(values["id"])
        if tag == "a" and values.get("name"):
            self.page.ids.add(values["name"])
        for attr in ("href", "src", "xlink:href"):
            url = values.get(attr)
            if url is not None:
                self.page.links.append((tag, url))


def read_page(path: Path) -> Page:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector.page


def read_site(root: Path) -> dict[Path, Page]:
    """Every ``*.html`` page under ``root`` (resolved paths) -> its :class:`Page`."""
    root = root.resolve()
    return {path: read_page(path) for path in sorted(root.rglob("*.html"))}


def is_internal(url: str) -> bool:
    """A link into the site itself: no scheme (``https:``, ``mailto:``, ``data:``) nor host."""
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def resolve(root: Path, page: Path, url: str) -> tuple[Path, str]:
    """The file and the fragment an internal ``url`` on ``page`` points to.

    A path starting with ``/`` is relative to the site root (the 404 page's links).
    """
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not path:
        target = page
    elif path.startswith("/"):
        target = root / path.lstrip("/")
    else:
        target = page.parent / path
    target = target.resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def broken_links(root: Path, site: dict[Path, Page] | None = None) -> tuple[int, list[str]]:
    """Check every internal link of the site; return (links checked, problems)."""
    root = root.resolve()
    site = site if site is not None else read_site(root)
    checked, problems = 0, []
    for page, info in site.items():
        for tag, url in info.links:
            if not is_internal(url):
                continue
            checked += 1
            target, fragment = resolve(root, page, url)
            where = f"{page.relative_to(root)}: <{tag}> {url}"
            if not target.is_file():
                problems.append(f"{where}: no such file")
            elif fragment and target.suffix == ".html":
                ids = site[target].ids if target in site else read_page(target).ids
                if fragment not in ids:
                    problems.append(f"{where}: no id {fragment!r} in {target.relative_to(root)}")
    return checked, problems
