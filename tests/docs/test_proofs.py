"""The guides' guarantees name the tests that prove them (docs/_ext/cm_proofs.py)."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser

from tests.docs.conftest import DOCS, ROOT, sphinx_build

PROOF_LINK = re.compile(r'href="((?:\.\./)*_proofs/[^"#]+)#([^"]+)"')


def _copy_docs(tmp_path):
    src = tmp_path / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("_build"))
    shutil.copy(ROOT / "API.md", tmp_path / "API.md")
    return src


def test_a_proof_naming_a_test_that_no_longer_exists_fails_the_strict_build(tmp_path):
    src = _copy_docs(tmp_path)
    (src / "claims.md").write_text(
        "---\norphan: true\n---\n# Claims\n\n"
        "Jobs are never lost. {proof}`tests/fleet/test_fleet.py::test_a_test_that_was_renamed`\n\n"
        "Nor late. {proof}`tests/fleet/no_such_file.py::test_x`\n\n"
        "Nor twice. {proof}`tests/unit/test_claiming.py::test_a_job_is_never_claimed_twice`\n"
    )
    result = sphinx_build("html", tmp_path / "out", "-E", src=src, doctrees=tmp_path / "dt")
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-3000:]
    assert re.search(r"claims\.md:\d+: WARNING: proof names no existing test: "
                     r"'tests/fleet/test_fleet\.py::test_a_test_that_was_renamed': "
                     r"tests/fleet/test_fleet\.py has no test test_a_test_that_was_renamed", log), log
    assert "no file tests/fleet/no_such_file.py" in log
    assert "test_a_job_is_never_claimed_twice" not in log  # that one exists


def test_renaming_a_cited_test_fails_the_next_incremental_build_too(tmp_path):
    """The check runs on every build, also for pages that are not read again."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "benchmarks" / "results", root / "benchmarks" / "results")  # {bench}
    cited = root / "tests" / "unit" / "test_cited.py"
    cited.write_text("def test_guarantee():\n    assert True\n")
    src = _copy_docs(root)
    (src / "claims.md").write_text("---\norphan: true\n---\n# Claims\n\n"
                                   "Holds. {proof}`tests/unit/test_cited.py::test_guarantee`\n")
    first = sphinx_build("html", root / "out", src=src, doctrees=root / "dt", proof_root=root)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    cited.write_text("def test_renamed():\n    assert True\n")
    second = sphinx_build("html", root / "out", src=src, doctrees=root / "dt", proof_root=root)
    log = second.stdout + second.stderr
    assert second.returncode != 0, log[-3000:]
    assert "tests/unit/test_cited.py has no test test_guarantee" in log
    cited.write_text("def test_guarantee():\n    assert 'edited' == 'edited'\n")
    third = sphinx_build("html", root / "out", src=src, doctrees=root / "dt", proof_root=root)
    assert third.returncode == 0, (third.stdout + third.stderr)[-3000:]
    page = (root / "out" / "_proofs" / "tests_unit_test_cited.html").read_text(encoding="utf-8")
    assert "edited" in page  # a changed test file's source page is written again


def test_every_proof_on_the_site_links_to_its_test_in_the_source_page(built_html):
    links = {}
    for page in built_html.glob("guides/**/*.html"):
        for href, anchor in PROOF_LINK.findall(page.read_text(encoding="utf-8")):
            links.setdefault((page.parent / href).resolve(), set()).add(anchor)
    assert sum(len(a) for a in links.values()) >= 20, links
    for target, anchors in links.items():
        ids = _ids(target.read_text(encoding="utf-8"))
        assert anchors <= ids, (target, anchors - ids)


def test_every_listed_guarantee_of_the_workers_guide_names_its_proof(built_html):
    page = (built_html / "guides" / "workers.html").read_text(encoding="utf-8")
    section = page.split('id="what-is-guaranteed"', 1)[1].split("What is <strong>not</strong>", 1)[0]
    items = re.findall(r"<li>(.*?)</li>", section, flags=re.S)
    assert len(items) >= 6
    assert all('class="cm-proof"' in item for item in items), [
        re.sub("<[^>]+>", "", i)[:60] for i in items if 'class="cm-proof"' not in i]


def _ids(html: str) -> set[str]:
    found: set[str] = set()

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.update(v for k, v in attrs if k == "id" and v)

    Collect().feed(html)
    return found
