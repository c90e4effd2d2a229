"""Every guarantee in the guides names its proof, or the build fails (docs/_ext/cm_guarantees.py)."""

from __future__ import annotations

import re

from tests.docs.conftest import DOCS, sphinx_build

CONF = f"""
import sys
sys.path.insert(0, {str(DOCS / "_ext")!r})
extensions = ["myst_parser", "cm_proofs", "cm_guarantees"]
"""
PROOF = "{proof}`tests/unit/test_claiming.py::test_a_job_is_never_claimed_twice`"
PAGE = f"""# Guide

A job is never claimed twice. {PROOF}

Claims never block: the word alone makes it a guarantee.

Set `pull_policy` to `never` or `always` (code spans are not prose).

Keep the socket private; never share it. {{no-proof}}`advice to the reader`

What is **not** guaranteed:

- a job never runs twice when a worker dies mid-launch.

## What is guaranteed

- each claim takes at most what it asked for.
- jobs are not lost. {PROOF}

| When | Then |
|---|---|
| a worker dies | its jobs are always adopted |
"""


def _build(tmp_path, src):
    result = sphinx_build("html", tmp_path / "out", src=src, doctrees=tmp_path / "dt")
    return result.returncode, result.stdout + result.stderr


def test_a_guarantee_without_a_proof_fails_the_strict_build_also_when_not_read_again(tmp_path):
    src = tmp_path / "docs"
    (src / "guides").mkdir(parents=True)
    (src / "conf.py").write_text(CONF)
    (src / "index.md").write_text("# Index\n\n```{toctree}\nguides/guide\nother\n```\n")
    (src / "other.md").write_text("# Other\n\nOutside the guides, never is not checked.\n")
    (src / "guides" / "guide.md").write_text(PAGE)
    code, log = _build(tmp_path, src)
    assert code != 0
    found = re.findall(r"guide\.md:(\d+): WARNING: guarantee without a \{proof\} "
                       r"\(or a \{no-proof\} reason\): (.*?) \[cm\.guarantee\]", log)
    assert [text for _line, text in found] == [
        "Claims never block: the word alone makes it a guarantee.",
        "each claim takes at most what it asked for.",
        "a worker dies its jobs are always adopted",
    ], log
    assert [int(line) for line, _text in found] == [5, 17, 20]  # a table row: the table's line
    # another page changes, the guide is not read again: it still fails
    (src / "other.md").write_text("# Other\n\nEdited.\n")
    code, log = _build(tmp_path, src)
    assert code != 0 and "Claims never block" in log
    # each gets its proof: the build passes and the exemption renders nothing
    fixed = (PAGE.replace("guarantee.\n", f"guarantee. {PROOF}\n")
             .replace("asked for.\n", f"asked for. {PROOF}\n")
             .replace("always adopted |", f"always adopted {PROOF} |"))
    (src / "guides" / "guide.md").write_text(fixed)
    code, log = _build(tmp_path, src)
    assert code == 0, log[-3000:]
    page = (tmp_path / "out" / "guides" / "guide.html").read_text()
    assert "advice to the reader" not in page and "never share it." in page
