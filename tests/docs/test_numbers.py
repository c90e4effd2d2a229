"""No hand-typed measured number in the guides (docs/_ext/cm_numbers.py)."""

from __future__ import annotations

import sys

import pytest

from tests.docs.conftest import DOCS, ROOT, sphinx_build

sys.path.insert(0, str(DOCS / "_ext"))

import cm_numbers  # noqa: E402
from docutils.core import publish_doctree  # noqa: E402
from myst_parser.parsers.docutils_ import Parser  # noqa: E402

CONF = f"""
import sys
sys.path.insert(0, {str(DOCS / "_ext")!r})
extensions = ["myst_parser", "cm_values", "cm_numbers"]
"""


def figures(markdown: str) -> list[str]:
    """The figures the check flags in a Markdown text (parsed by MyST, no Sphinx)."""
    doctree = publish_doctree(markdown, parser=Parser(), settings_overrides={"report_level": 5})
    return [f.text for f in cm_numbers.find_figures(doctree)]


@pytest.mark.parametrize("prose", [
    "A claim takes about 4 ms.",
    "The worker exits within 1.5 s of SIGTERM.",
    "Each scrape took 32.5 ms on 100 jobs.",
    "It sustained 27 executions/min, or 12 jobs/s.",
    "Reads ran at 600/min.",
    "The log holds 512 MiB; the image is 1.2 GB.",
    "Threads were busy 83% of the time, 10x faster.",
    "Each execution costs 2 calls per job.",
    "At most 30 executions a minute finish.",
    "It makes two writes per execution.",
    "The gauges cost 1 statement and 5 requests.",
    "Timeout of each API call (default 30).",
    "`WORKER_CONCURRENCY` (8) jobs at once.",
    "Jobs driven at once, 1 to 256.",
    "The priority runs from -100 to 100.",
    "Time is compressed ten times.",
])
def test_a_hand_typed_figure_is_flagged(prose):
    assert figures(f"# Page\n\n{prose}\n"), prose


@pytest.mark.parametrize("prose", [
    "Set `memory_limit=512` or `timeout_seconds=30` on the job.",
    "```python\njob = ContainerJob(memory_limit=512)  # 512 MB, 30 s\n```",
    "Python 3.11, 3.12 or 3.13; Django 5.2 or 6.x.",
    "Exit code 137 means the container was killed; 128 + termSignal.",
    "One list per `poll_seconds` for all the jobs, not one per job.",
    "Read [the guide](https://example.com/wait-30s) first.",
    "<!-- 4 ms in a comment -->",
])
def test_code_spans_blocks_and_plain_numbers_are_not_flagged(prose):
    assert figures(f"# Page\n\n{prose}\n") == [], prose


def test_a_number_alone_in_a_table_cell_is_flagged():
    table = "| Bucket | Calls |\n|---|---|\n| `write` | 2 |\n| `run` | `1` |\n"
    assert figures(f"# Page\n\n{table}") == ["2"]


def _project(tmp_path, page: str, allow: str = ""):
    src = tmp_path / "docs"
    (src / "guides").mkdir(parents=True)
    (src / "conf.py").write_text(CONF)
    (src / "index.md").write_text("# Index\n\n```{toctree}\nguides/page\n```\n")
    (src / "guides" / "page.md").write_text(page)
    (src / cm_numbers.ALLOW_LIST).write_text(allow)
    return src


def _build(tmp_path, src):
    result = sphinx_build("html", tmp_path / "out", src=src, doctrees=tmp_path / "dt")
    return result.returncode, result.stdout + result.stderr


PAGE = """# Page

A worker claims a job in about 4 ms, and {code-value}`LEASE_SECONDS s` is the lease.
Set `memory_limit=512` on the job.
"""
ENTRY = """
[[allow]]
page = "guides/page.md"
text = "in about 4 ms"
reason = "a test of the allow-list"
"""


def test_an_unlisted_hand_typed_figure_fails_the_strict_build_and_an_entry_allows_it(tmp_path):
    src = _project(tmp_path, PAGE)
    code, log = _build(tmp_path, src)
    assert code != 0
    assert "guides/page.md:3: WARNING: hand-typed figure '4 ms' (number with a unit)" in log, log
    assert log.count("hand-typed figure") == 1, log  # not the code value, not the code span

    (src / cm_numbers.ALLOW_LIST).write_text(ENTRY)
    code, log = _build(tmp_path, src)
    assert code == 0, log[-3000:]

    # only the list changes (the entry removed): the next build reads the pages again and fails
    (src / cm_numbers.ALLOW_LIST).write_text("")
    code, log = _build(tmp_path, src)
    assert code != 0 and "hand-typed figure '4 ms'" in log, log
    (src / cm_numbers.ALLOW_LIST).write_text(ENTRY)
    code, log = _build(tmp_path, src)
    assert code == 0, log[-3000:]

    # the figure is gone from the page: the entry allows nothing and fails the build
    (src / "guides" / "page.md").write_text(PAGE.replace("in about 4 ms", "quickly"))
    code, log = _build(tmp_path, src)
    assert code != 0
    assert "the entry for guides/page.md 'in about 4 ms' allows nothing there" in log, log


def test_an_entry_without_a_reason_fails_the_build(tmp_path):
    src = _project(tmp_path, PAGE, ENTRY.replace('reason = "a test of the allow-list"', ""))
    code, log = _build(tmp_path, src)
    assert code != 0
    assert "entry 1 needs reason" in log, log


def test_the_readme_has_no_hand_typed_figure_outside_the_allow_list():
    """README.md is not part of the site: the same check runs on it here."""
    doctree = publish_doctree((ROOT / "README.md").read_text(encoding="utf-8"), parser=Parser(),
                              settings_overrides={"report_level": 5})
    entries, problems = cm_numbers.load_allow_list(DOCS / cm_numbers.ALLOW_LIST)
    assert problems == []
    mine = [e for e in entries if e.page == cm_numbers.README]
    left, _used = cm_numbers.unallowed(cm_numbers.find_figures(doctree), mine)
    assert [(f.line, f.text) for f in left] == []

