"""Editing a guide rewrites that page only, unless its title or sections changed
(docs/_ext/cm_incremental.py); the pages listing it are then rewritten too.

The general and module indices are written again exactly when what they show
changed: a new index entry, or the navigation (a renamed section). A new title
is written into every page's sidebar."""

from __future__ import annotations

import re
import shutil

from tests.docs.conftest import DOCS, ROOT, sphinx_build


def test_editing_a_guide_rewrites_only_that_page_unless_its_toc_changed(tmp_path):
    src = tmp_path / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("_build"))
    shutil.copy(ROOT / "API.md", tmp_path / "API.md")
    out, doctrees = tmp_path / "html", tmp_path / "dt"

    def build(*extra: str) -> set[str]:
        result = sphinx_build("html", out, *extra, src=src, doctrees=doctrees)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        # Sphinx draws progress on one line (\r, ANSI codes) when it thinks the terminal
        # supports colour, as it does whenever CI=true: strip the codes, split on \r too.
        plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", result.stdout)
        return {line.rsplit("] ", 1)[-1].strip() for line in plain.splitlines()
                if line.startswith("writing output... [")}

    assert len(build()) > 20
    modules = out / "_modules" / "index.html"  # viewcode's index, spared the same way
    written = modules.stat().st_mtime_ns
    proofs = {p: p.stat().st_mtime_ns for p in (out / "_proofs").glob("*.html")}
    assert len(proofs) > 3  # the cited tests' source pages (cm_proofs), spared too
    indices = {name: out / f"{name}.html" for name in ("genindex", "py-modindex")}
    generated = [out / "search.html", out / "404.html",
                 out / "_modules" / "container_manager" / "models" / "job.html"]
    spared = {page: page.stat().st_mtime_ns for page in generated}
    indexed = {name: page.stat().st_mtime_ns for name, page in indices.items()}
    guide = src / "guides" / "concepts.md"
    guide.write_text(guide.read_text(encoding="utf-8") + "\nOne more sentence.\n")
    assert build() == {"guides/concepts"}
    assert modules.stat().st_mtime_ns == written
    assert {p: p.stat().st_mtime_ns for p in proofs} == proofs
    assert {name: page.stat().st_mtime_ns for name, page in indices.items()} == indexed
    assert {page: page.stat().st_mtime_ns for page in generated} == spared
    assert "One more sentence." in (out / "guides" / "concepts.html").read_text()
    # a new entry of the general index: genindex is written again, the module index is not
    guide.write_text(guide.read_text(encoding="utf-8")
                     + "\n```{index} single: zz-incremental-entry\n```\n")
    assert build() == {"guides/concepts"}
    assert indices["genindex"].stat().st_mtime_ns != indexed["genindex"]
    assert "zz-incremental-entry" in indices["genindex"].read_text(encoding="utf-8")
    assert indices["py-modindex"].stat().st_mtime_ns == indexed["py-modindex"]
    indexed = {name: page.stat().st_mtime_ns for name, page in indices.items()}
    text = guide.read_text(encoding="utf-8")
    heading = next(line for line in text.splitlines() if line.startswith("## "))
    guide.write_text(text.replace(f"\n{heading}\n", f"\n{heading} renamed\n", 1))
    assert build() == {"guides/concepts", "index"}  # index lists the guide's sections
    assert modules.stat().st_mtime_ns != written
    assert f"{heading[3:]} renamed" in (out / "index.html").read_text()
    for name, page in indices.items():  # the navigation they show is drawn from the tocs
        assert page.stat().st_mtime_ns != indexed[name], name
    for page in generated:
        assert page.stat().st_mtime_ns != spared[page], page
    indexed = {name: page.stat().st_mtime_ns for name, page in indices.items()}
    assert build() == set()  # and nothing is left to do
    assert {name: page.stat().st_mtime_ns for name, page in indices.items()} == indexed
    indices["py-modindex"].write_text("damaged", encoding="utf-8")  # not the file written
    assert build() == set()
    assert "damaged" not in indices["py-modindex"].read_text(encoding="utf-8")
    build("-a")  # writing everything writes the indices too
    assert {name: page.stat().st_mtime_ns for name, page in indices.items()} != indexed
    # a new title shows in every page's sidebar: every page is written (Sphinx alone
    # writes the guide and index only, and the others show the old title)
    first = guide.read_text(encoding="utf-8").split("\n", 1)
    guide.write_text(f"{first[0]} Zyx\n{first[1]}", encoding="utf-8")
    assert len(build()) > 20
    sidebar = (out / "guides" / "workers.html").read_text(encoding="utf-8")
    assert f"{first[0][2:]} Zyx" in sidebar


def test_module_source_pages_follow_the_code_and_the_back_links(tmp_path):
    """viewcode's page of a module is written again when its code or a "[docs]" link moved.

    Sphinx alone compares the module file's time with the page's, and so keeps a
    page whose back-links point at a page that no longer documents the object.
    """
    src, out, doctrees = tmp_path / "src", tmp_path / "html", tmp_path / "dt"
    src.mkdir()
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(src)!r}, {str(DOCS / '_ext')!r}]\n"
        "extensions = ['sphinx.ext.autodoc', 'sphinx.ext.viewcode', 'cm_incremental']\n"
    )
    (src / "index.rst").write_text("Index\n=====\n\n.. toctree::\n\n   a\n   b\n")
    automodule = ".. automodule:: cm_probe_module\n   :members:\n"
    (src / "a.rst").write_text(f"A\n=\n\n{automodule}")
    (src / "b.rst").write_text("B\n=\n\nNothing yet.\n")
    module = src / "cm_probe_module.py"
    module.write_text('"""Probe."""\n\n\ndef f():\n    """F."""\n')
    page = out / "_modules" / "cm_probe_module.html"

    def build() -> None:
        result = sphinx_build("html", out, src=src, doctrees=doctrees)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    build()
    assert 'href="../a.html#cm_probe_module.f"' in page.read_text(encoding="utf-8")
    module.write_text(module.read_text() + '\n\ndef g():\n    """G."""\n')
    build()
    assert 'id="g"' in page.read_text(encoding="utf-8")  # the new code is shown
    written = page.stat().st_mtime_ns
    (src / "b.rst").write_text("B\n=\n\nStill nothing.\n")
    build()
    assert page.stat().st_mtime_ns == written  # nothing it shows changed
    (src / "a.rst").write_text("A\n=\n\nMoved.\n")
    (src / "b.rst").write_text(f"B\n=\n\n{automodule}")
    build()
    text = page.read_text(encoding="utf-8")
    assert 'href="../b.html#cm_probe_module.f"' in text
    assert "a.html#" not in text
