"""Figures in the docs are read from recorded benchmark results (docs/_ext/cm_bench.py)."""

from __future__ import annotations

import datetime
import json
import re

from benchmarks.record import record
from tests.docs.conftest import DOCS, ROOT, sphinx_build

CONF = f"""
import sys
sys.path.insert(0, {str(DOCS / "_ext")!r})
extensions = ["myst_parser", "cm_proofs", "cm_bench"]
cm_bench_page = "results"
"""


def _project(tmp_path):
    repo = tmp_path / "repo"
    src = repo / "docs"
    src.mkdir(parents=True)
    (src / "conf.py").write_text(CONF)
    (src / "index.md").write_text("# Index\n\n```{toctree}\nguide\nresults\n```\n")
    (src / "results.md").write_text("# Results\n\n```{bench-results}\n```\n")
    (src / "guide.md").write_text(
        "# Guide\n\nThe job ran {bench}`demo.ran` and stored {bench}`demo.stored:.1f` "
        "({bench-run}`demo`).\n")
    return repo, src


def _build(repo, src, *extra):
    result = sphinx_build("html", repo / "out", *extra, src=src, doctrees=repo / "dt",
                          proof_root=repo)
    return result.returncode, result.stdout + result.stderr


def test_a_recorded_figure_renders_with_its_run_and_a_missing_one_fails_the_strict_build(
        tmp_path, monkeypatch):
    repo, src = _project(tmp_path)
    monkeypatch.delenv("CM_BENCH_NO_RECORD", raising=False)
    path = record("demo", {"ran": (4.0975, "s", ".1f"), "stored": (1.0, "MiB"), "calls": 5},
                  parameters={"jobs": 3}, directory=repo / "benchmarks" / "results")
    data = json.loads(path.read_text())
    assert data["format"] == 1 and data["name"] == "demo" and data["parameters"] == {"jobs": 3}
    assert set(data["machine"]) == {"cpus", "cpu_model", "python", "os", "load_average"}
    assert data["figures"]["ran"] == {"value": 4.0975, "unit": "s", "format": ".1f"}
    assert data["figures"]["calls"] == {"value": 5}
    day = data["date"][:10]
    assert datetime.date.fromisoformat(day)

    code, log = _build(repo, src)
    assert code == 0, log[-3000:]
    page = (repo / "out" / "guide.html").read_text()
    assert re.search(r'<a class="[^"]*cm-bench[^"]*" href="results.html#bench-demo"[^>]*>'
                     r'<abbr title="demo: measured on ' + day + r' on \d+ CPUs [^"]*">4\.1 s</abbr>',
                     page), page
    assert "1.0 MiB" in page
    assert f"measured on {day} on {data['machine']['cpus']} CPUs" in page
    results = (repo / "out" / "results.html").read_text()
    assert 'id="bench-demo"' in results and "jobs = 3" in results and "4.1 s" in results

    # a figure the result does not hold, and a result never recorded
    (src / "claims.md").write_text("---\norphan: true\n---\n# Claims\n\n"
                                   "{bench}`demo.nope` and {bench}`missing.ran`\n")
    code, log = _build(repo, src)
    assert code != 0
    assert re.search(r"claims\.md:\d+: WARNING: recorded benchmark figure: 'demo\.nope': "
                     r"benchmarks/results/demo\.json has no figure 'nope' \(calls, ran, stored\)",
                     log), log
    assert "no recorded result benchmarks/results/missing.json" in log
    (src / "claims.md").unlink()

    # re-recorded without a quoted figure: the next incremental build fails too
    record("demo", {"ran": (3.5, "s", ".1f")}, directory=repo / "benchmarks" / "results")
    code, log = _build(repo, src)
    assert code != 0
    assert "'demo.stored:.1f': benchmarks/results/demo.json has no figure 'stored'" in log


def test_every_committed_result_names_its_run_and_machine():
    files = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert "docker_logs" in {f.stem for f in files}  # quoted by the Docker guide
    for file in files:
        data = json.loads(file.read_text())
        assert data["format"] == 1 and data["name"] == file.stem, file
        assert data["command"].startswith("benchmarks/"), file
        assert datetime.datetime.fromisoformat(data["date"].replace("Z", "+00:00")), file
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", data["commit"]), file
        assert data["machine"]["cpus"] >= 1 and data["machine"]["python"], file
        assert data["figures"], file
        assert all(isinstance(f["value"], (int, float)) for f in data["figures"].values()), file


def test_the_site_lists_every_recorded_result(built_html):
    page = (built_html / "reference" / "benchmarks.html").read_text(encoding="utf-8")
    for file in (ROOT / "benchmarks" / "results").glob("*.json"):
        assert f'id="bench-{file.stem}"' in page, file.stem
