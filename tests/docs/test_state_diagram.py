"""The state diagram drawer (docs/_ext/cm_diagram.py): complete, and nothing overlaps."""

from __future__ import annotations

import re
import sys

import pytest

from tests.docs.conftest import DOCS

sys.path.insert(0, str(DOCS / "_ext"))
import cm_diagram  # noqa: E402


def _overlap(a, b) -> bool:
    return abs(a.x - b.x) < (a.w + b.w) / 2 and abs(a.y - b.y) < (a.h + b.h) / 2


@pytest.mark.parametrize(
    "table",
    [
        "lifecycle",
        # a made-up table: a longer chain, two side states, a move back two steps
        {"new": {"a", "x"}, "a": {"b", "x", "y"}, "b": {"c", "new", "y"}, "c": set(),
         "x": set(), "y": {"new"}},
    ],
)
def test_every_move_is_drawn_and_no_boxes_overlap(table):
    if table == "lifecycle":
        from container_manager.lifecycle import TERMINAL_STATUSES, TRANSITIONS

        table, initial, terminal = TRANSITIONS, "pending", TERMINAL_STATUSES
    else:
        initial, terminal = "new", {"c", "x"}
    boxes, edges, back = cm_diagram.layout(table, initial, terminal)
    assert set(boxes) == set(table)
    names = list(boxes.values())
    assert not [(a.name, b.name) for i, a in enumerate(names) for b in names[i + 1:] if _overlap(a, b)]
    svg = cm_diagram.state_diagram_svg(table, initial, terminal, alt="a <diagram>")
    drawn = set(re.findall(r"<title>(\w+)&#45;&gt;(\w+)</title>", svg))
    assert drawn == {(o, n) for o, t in table.items() for n in t} | {("start", initial)}
    assert len(re.findall(r'stroke-dasharray', svg)) == len(back) > 0  # moves back are dashed
    assert svg.count("<rect") == len(table) + len(set(terminal))  # terminal: double border
    assert 'aria-label="a &lt;diagram&gt;"' in svg
    width, height = map(float, re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) ([\d.]+)"', svg).groups())
    assert 0 < width < 2000 and 0 < height < 1000
