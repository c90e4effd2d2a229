"""Every internal link and ``#anchor`` of the built site resolves."""

from __future__ import annotations

from pathlib import Path

from tests.docs.site_links import broken_links, read_site


def test_every_internal_link_and_anchor_resolves(built_html: Path):
    site = read_site(built_html)
    checked, problems = broken_links(built_html, site)
    print(f"link check: {len(site)} pages, {checked} internal links, {len(problems)} broken")
    assert len(site) > 40 and checked > 3000, (len(site), checked)
    assert not problems, "\n".join(problems)


def test_viewcode_back_links_point_at_the_documented_objects(built_html: Path):
    """The "[docs]" links of the source pages go to the object's one documented path.

    Most objects of ``models/execution.py`` are documented under
    ``container_manager.models``; ``PreparedRecord`` under its own module's path
    (docs/reference/managers.rst). viewcode keeps one path per module: the other
    one's links are corrected by docs/_ext/cm_viewcode.py.
    """
    page = built_html / "_modules" / "container_manager" / "models" / "execution.html"
    text = page.read_text(encoding="utf-8")
    for name in ("ContainerExecution", "ExecutionStatus", "ContainerExecutionManager"):
        assert f'#container_manager.models.{name}"' in text, name
        assert f'#container_manager.models.execution.{name}"' not in text, name
    assert '#container_manager.models.execution.PreparedRecord"' in text
    assert '#container_manager.models.PreparedRecord"' not in text


def test_the_checker_reports_missing_pages_and_anchors(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#here">ok</a> <a href="sub/page.html#gone">anchor</a>'
        ' <a href="nope.html">page</a> <img src="_static/x.png"> <a href="#top">self</a>'
        ' <a href="https://example.org/x.html">external</a> <a href="/sub/page.html">root</a>'
    )
    (tmp_path / "sub" / "page.html").write_text('<h1 id="here">Here</h1><a href="../index.html#">up</a>')
    checked, problems = broken_links(tmp_path)
    assert checked == 7
    assert sorted(p.split(": ", 1)[1] for p in problems) == [
        "<a> #top: no id 'top' in index.html",
        "<a> nope.html: no such file",
        "<a> sub/page.html#gone: no id 'gone' in sub/page.html",
        "<img> _static/x.png: no such file",
    ]
