"""Draw a state diagram as inline SVG, in pure Python (no Graphviz, no network).

:func:`state_diagram_svg` lays out a transition table the way the job lifecycle
reads best: the longest forward path from the initial state on one row (the
happy path), every other state on rows above and below, under the mean position
of the states it is reached from, and the moves back (retries) as dashed arcs.
Lines and arrowheads use ``currentColor``, so the drawing follows the theme's
text colour (light and dark); boxes keep their own light fills and dark text.

Each move is an SVG group whose ``<title>`` is ``old-&gt;new`` (a tooltip, and
what the documentation tests read back).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape

FONT = 14  # px, box labels
CHAR = 0.62 * FONT  # estimated advance of one sans-serif character
BOX_H = 36
PAD_X = 14
MIN_W = 86
COL_GAP = 64  # horizontal space between two boxes of the main row
ROW_GAP = 64  # vertical space between two rows of boxes
MARGIN = 12
ARROW = 9  # arrowhead length
FILL = "#eef3fb"
TERMINAL_FILL = "#e7f5e9"
TEXT = "#1b1f24"


@dataclass
class Box:
    """A state's box: centre, size and looks."""

    name: str
    x: float
    y: float
    w: float
    terminal: bool

    @property
    def h(self) -> float:
        return BOX_H

    def boundary(self, dx: float, dy: float) -> tuple[float, float]:
        """Where the ray from the centre in direction (dx, dy) leaves the box."""
        if dx == 0 and dy == 0:
            return self.x, self.y
        sx = (self.w / 2) / abs(dx) if dx else math.inf
        sy = (self.h / 2) / abs(dy) if dy else math.inf
        s = min(sx, sy)
        return self.x + dx * s, self.y + dy * s


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _back_edges(order: list[str], edges: list[tuple[str, str]], initial: str) -> set[tuple[str, str]]:
    """Edges that close a cycle in a depth-first walk from ``initial`` (the retries)."""
    succ: dict[str, list[str]] = {n: [] for n in order}
    for old, new in edges:
        succ[old].append(new)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    back: set[tuple[str, str]] = set()

    def visit(node: str) -> None:
        state[node] = 1
        for nxt in succ[node]:
            if state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                visit(nxt)
        state[node] = 2

    for start in [initial, *order]:
        if start not in state:
            visit(start)
    return back


def _longest_path(order: list[str], forward: list[tuple[str, str]], initial: str) -> list[str]:
    """The longest path of forward moves from ``initial`` (ties: table order)."""
    succ: dict[str, list[str]] = {n: [] for n in order}
    for old, new in forward:
        succ[old].append(new)
    best: dict[str, list[str]] = {}

    def longest(node: str) -> list[str]:
        if node not in best:
            tails = [longest(nxt) for nxt in succ[node]]
            best[node] = [node, *max(tails, key=len, default=[])]  # max keeps the first tie
        return best[node]

    return longest(initial)


def layout(
    transitions: Mapping[str, Iterable[str]], initial: str, terminal: Iterable[str]
) -> tuple[dict[str, Box], list[tuple[str, str]], set[tuple[str, str]]]:
    """Place every state; return the boxes, the moves (table order) and the back moves."""
    order = list(transitions)
    edges = [(old, new) for old in order for new in order if new in set(transitions[old])]
    terminal = set(terminal)
    back = _back_edges(order, edges, initial)
    forward = [e for e in edges if e not in back]
    main = _longest_path(order, forward, initial)

    def width(name: str) -> float:
        return max(MIN_W, len(name) * CHAR + 2 * PAD_X)

    boxes: dict[str, Box] = {}
    x = MARGIN + 24.0  # room for the start dot
    for name in main:
        w = width(name)
        boxes[name] = Box(name, x + w / 2, 0.0, w, name in terminal)
        x += w + COL_GAP
    # Every other state goes on the row below, under the mean x of the placed
    # states it is reached from (or leads to); states that would overlap are
    # spread side by side around their common mean. The moves back arc above.
    wanted: list[tuple[float, str]] = []
    for name in (n for n in order if n not in boxes):
        near = [boxes[o].x for o, n in edges if n == name and o in boxes] or [
            boxes[n].x for o, n in edges if o == name and n in boxes
        ] or [boxes[main[-1]].x]
        wanted.append((sum(near) / len(near), name))
    wanted.sort(key=lambda item: item[0])  # stable: table order among equals
    clusters: list[list[tuple[float, str]]] = []
    for item in wanted:
        if clusters:
            last = clusters[-1]
            span = sum(width(n) for _, n in last) + COL_GAP / 2 * len(last)
            if item[0] - last[0][0] < span:
                last.append(item)
                continue
        clusters.append([item])
    row_y = BOX_H + ROW_GAP
    for cluster in clusters:
        total = sum(width(n) for _, n in cluster) + COL_GAP / 2 * (len(cluster) - 1)
        left = sum(x for x, _ in cluster) / len(cluster) - total / 2
        for _, name in cluster:
            w = width(name)
            boxes[name] = Box(name, left + w / 2, row_y, w, name in terminal)
            left += w + COL_GAP / 2
    return boxes, edges, back


def _arrowhead(tip: tuple[float, float], frm: tuple[float, float]) -> str:
    dx, dy = tip[0] - frm[0], tip[1] - frm[1]
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    bx, by = tip[0] - ux * ARROW, tip[1] - uy * ARROW
    px, py = -uy * ARROW * 0.45, ux * ARROW * 0.45
    points = [tip, (bx + px, by + py), (bx - px, by - py)]
    return " ".join(f"{_fmt(a)},{_fmt(b)}" for a, b in points)


def _edge_svg(
    old: Box, new: Box, *, back: bool, lane: int, main_row: bool, label: str | None
) -> tuple[str, list[tuple[float, float]]]:
    """One move as SVG (path, arrowhead, label); also the points that bound it."""
    title = f"<title>{escape(old.name)}&#45;&gt;{escape(new.name)}</title>"
    dash = ' stroke-dasharray="5,4"' if back else ""
    if back and main_row:
        # An arc over the main row, higher for longer jumps.
        rise = BOX_H / 2 + 14 + 16 * lane
        sx, sy = old.x - old.w / 4, old.y - BOX_H / 2
        ex, ey = new.x + new.w / 4 - 10 * lane, new.y - BOX_H / 2
        cx, cy = (sx + ex) / 2, min(sy, ey) - 2 * rise
        tx, ty = ex - cx, ey - cy  # the curve's direction where it arrives
        t = math.hypot(tx, ty) or 1.0
        shaft = (ex - tx / t * ARROW, ey - ty / t * ARROW)
        path = f"M{_fmt(sx)},{_fmt(sy)} Q{_fmt(cx)},{_fmt(cy)} {_fmt(shaft[0])},{_fmt(shaft[1])}"
        head = _arrowhead((ex, ey), shaft)
        mid = (0.25 * sx + 0.5 * cx + 0.25 * ex, 0.25 * sy + 0.5 * cy + 0.25 * ey)
        bounds = [(sx, sy), (ex, ey), (mid[0], mid[1] - FONT)]
    else:
        dx, dy = new.x - old.x, new.y - old.y
        if back:  # a back move between rows: a straight line, offset from the forward one
            nx, ny = -dy, dx
            n = math.hypot(nx, ny) or 1.0
            offset = 6.0
            old_c = (old.x + nx / n * offset, old.y + ny / n * offset)
            new_c = (new.x + nx / n * offset, new.y + ny / n * offset)
        else:
            old_c, new_c = (old.x, old.y), (new.x, new.y)
        start = old.boundary(dx, dy)
        end = new.boundary(-dx, -dy)
        start = (start[0] + old_c[0] - old.x, start[1] + old_c[1] - old.y)
        end = (end[0] + new_c[0] - new.x, end[1] + new_c[1] - new.y)
        length = math.hypot(end[0] - start[0], end[1] - start[1]) or 1.0
        shaft = (
            end[0] - (end[0] - start[0]) / length * ARROW,
            end[1] - (end[1] - start[1]) / length * ARROW,
        )
        path = f"M{_fmt(start[0])},{_fmt(start[1])} L{_fmt(shaft[0])},{_fmt(shaft[1])}"
        head = _arrowhead(end, start)
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        bounds = [start, end]
    parts = [
        f'<g class="edge">{title}',
        f'<path d="{path}" fill="none" stroke="currentColor" stroke-width="1.3"{dash}/>',
        f'<polygon points="{head}" fill="currentColor"/>',
    ]
    if label:
        parts.append(
            f'<text x="{_fmt(mid[0])}" y="{_fmt(mid[1] - 4)}" text-anchor="middle" '
            f'font-size="11" fill="currentColor">{escape(label)}</text>'
        )
    parts.append("</g>")
    return "".join(parts), bounds


def state_diagram_svg(
    transitions: Mapping[str, Iterable[str]],
    initial: str,
    terminal: Iterable[str],
    *,
    alt: str,
    back_label: str | None = "retry",
) -> str:
    """An inline ``<svg>`` drawing of ``transitions``.

    Args:
        transitions: Each state, in display order, with the states it may move to.
        initial: The state a new object starts in (a dot points at it).
        terminal: The states drawn as final (double border, green).
        alt: The text alternative (``aria-label`` and ``<desc>``).
        back_label: The label of the moves back to ``initial`` (dashed arcs).

    Returns:
        The SVG element, ready to embed in an HTML page.
    """
    boxes, edges, back = layout(transitions, initial, terminal)
    main_row = {b.name for b in boxes.values() if b.y == 0}
    pieces: list[str] = []
    points: list[tuple[float, float]] = []
    first = boxes[initial]
    dot = (first.x - first.w / 2 - 20, first.y)
    pieces.append(
        f'<g class="edge"><title>start&#45;&gt;{escape(initial)}</title>'
        f'<circle cx="{_fmt(dot[0])}" cy="{_fmt(dot[1])}" r="5" fill="currentColor"/>'
        f'<path d="M{_fmt(dot[0] + 5)},{_fmt(dot[1])} L{_fmt(first.x - first.w / 2 - ARROW)},'
        f'{_fmt(dot[1])}" stroke="currentColor" stroke-width="1.3"/>'
        f'<polygon points="{_arrowhead((first.x - first.w / 2, dot[1]), dot)}" '
        'fill="currentColor"/></g>'
    )
    points.append((dot[0] - 6, dot[1]))
    arcs = sorted(
        (e for e in edges if e in back and {e[0], e[1]} <= main_row),
        key=lambda e: abs(boxes[e[0]].x - boxes[e[1]].x),
    )
    for old, new in edges:
        is_arc = (old, new) in arcs
        svg, bounds = _edge_svg(
            boxes[old],
            boxes[new],
            back=(old, new) in back,
            lane=arcs.index((old, new)) if is_arc else 0,
            main_row=is_arc,
            label=back_label if (old, new) in back and new == initial else None,
        )
        pieces.append(svg)
        points += bounds
    for box in boxes.values():
        left, top = box.x - box.w / 2, box.y - box.h / 2
        fill = TERMINAL_FILL if box.terminal else FILL
        rect = (
            f'<rect x="{_fmt(left)}" y="{_fmt(top)}" width="{_fmt(box.w)}" '
            f'height="{_fmt(box.h)}" rx="7" fill="{fill}" stroke="{TEXT}" stroke-width="1.2"/>'
        )
        if box.terminal:  # a second border, like Graphviz's peripheries=2
            rect += (
                f'<rect x="{_fmt(left + 3)}" y="{_fmt(top + 3)}" width="{_fmt(box.w - 6)}" '
                f'height="{_fmt(box.h - 6)}" rx="5" fill="none" stroke="{TEXT}" '
                'stroke-width="0.8"/>'
            )
        pieces.append(
            f'<g class="node"><title>{escape(box.name)}</title>{rect}'
            f'<text x="{_fmt(box.x)}" y="{_fmt(box.y + FONT * 0.35)}" text-anchor="middle" '
            f'font-size="{FONT}" fill="{TEXT}">{escape(box.name)}</text></g>'
        )
        points += [(left, top), (left + box.w, top + box.h)]
    min_x = min(p[0] for p in points) - MARGIN
    min_y = min(p[1] for p in points) - MARGIN
    max_x = max(p[0] for p in points) + MARGIN
    max_y = max(p[1] for p in points) + MARGIN
    w, h = max_x - min_x, max_y - min_y
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cm-state-diagram" role="img" '
        f'aria-label="{escape(alt)}" viewBox="{_fmt(min_x)} {_fmt(min_y)} {_fmt(w)} {_fmt(h)}" '
        f'width="{_fmt(w)}" height="{_fmt(h)}" '
        'style="max-width: 100%; height: auto" font-family="sans-serif">'
        f"<desc>{escape(alt)}</desc>{''.join(pieces)}</svg>"
    )


def layered_diagram_svg(
    layers: list[tuple[str, list[str]]],
    edges: Iterable[tuple[str, str]],
    *,
    alt: str,
) -> str:
    """An inline ``<svg>`` of boxes grouped in horizontal layers, top layer first.

    Each layer is a dashed frame with its label and its units side by side; each
    edge is a curve from the bottom of one unit to the top of another (or, within
    a layer, an arc under the two boxes). Edges are drawn first, so the opaque
    boxes stay readable where a long edge passes behind them.

    Args:
        layers: ``(label, units)`` per layer, from the top of the drawing down.
        edges: ``(from, to)`` unit pairs (an import, a dependency).
        alt: The text alternative (``aria-label`` and ``<desc>``).

    Returns:
        The SVG element, ready to embed in an HTML page.
    """
    font, box_h, label_h, pad, gap = 12, 28, 18, 10, 30
    char = 0.62 * font
    widths = {u: max(64.0, len(u) * char + 20) for _, units in layers for u in units}
    rows = [sum(widths[u] for u in units) + 24 * (len(units) - 1) for _, units in layers]
    labels = [len(label) * 0.6 * 10 for label, _ in layers]
    frame_w = max([*rows, *labels]) + 2 * pad
    frame_h = label_h + box_h + 2 * pad
    boxes: dict[str, Box] = {}
    frames = []
    for i, (label, units) in enumerate(layers):
        top = MARGIN + i * (frame_h + gap)
        frames.append((label, top))
        x = MARGIN + (frame_w - rows[i]) / 2
        for unit in units:
            w = widths[unit]
            box = Box(unit, x + w / 2, top + label_h + pad + box_h / 2, w, False)
            boxes[unit] = box
            x += w + 24
    pieces: list[str] = []
    for old, new in sorted(set(edges)):
        if old not in boxes or new not in boxes:
            continue
        a, b = boxes[old], boxes[new]
        title = f"<title>{escape(old)}&#45;&gt;{escape(new)}</title>"
        if abs(a.y - b.y) < 1:  # same layer: an arc below both boxes
            sx, sy = a.x, a.y + box_h / 2
            ex, ey = b.x, b.y + box_h / 2
            c1, c2 = (sx, sy + 22), (ex, ey + 22)
        else:
            down = b.y > a.y
            sx, sy = a.x, a.y + (box_h / 2 if down else -box_h / 2)
            ex, ey = b.x, b.y + (-box_h / 2 if down else box_h / 2)
            bend = (ey - sy) * 0.5
            c1, c2 = (sx, sy + bend), (ex, ey - bend)
        t = math.hypot(ex - c2[0], ey - c2[1]) or 1.0
        shaft = (ex - (ex - c2[0]) / t * ARROW * 0.8, ey - (ey - c2[1]) / t * ARROW * 0.8)
        pieces.append(
            f'<g class="edge" opacity="0.6">{title}<path d="M{_fmt(sx)},{_fmt(sy)} '
            f"C{_fmt(c1[0])},{_fmt(c1[1])} {_fmt(c2[0])},{_fmt(c2[1])} "
            f'{_fmt(shaft[0])},{_fmt(shaft[1])}" fill="none" stroke="currentColor" '
            f'stroke-width="1"/><polygon points="{_arrowhead((ex, ey), shaft)}" '
            'fill="currentColor"/></g>'
        )
    for label, top in frames:
        pieces.append(
            f'<g class="cluster"><rect x="{_fmt(MARGIN)}" y="{_fmt(top)}" width="{_fmt(frame_w)}" '
            f'height="{_fmt(frame_h)}" rx="6" fill="none" stroke="currentColor" '
            'stroke-opacity="0.45" stroke-dasharray="4,3"/>'
            f'<text x="{_fmt(MARGIN + 8)}" y="{_fmt(top + 14)}" font-size="10" '
            f'fill="currentColor">{escape(label)}</text></g>'
        )
    for box in boxes.values():
        left, top = box.x - box.w / 2, box.y - box_h / 2
        pieces.append(
            f'<g class="node"><title>{escape(box.name)}</title>'
            f'<rect x="{_fmt(left)}" y="{_fmt(top)}" width="{_fmt(box.w)}" height="{box_h}" '
            f'rx="6" fill="{FILL}" stroke="{TEXT}" stroke-width="1"/>'
            f'<text x="{_fmt(box.x)}" y="{_fmt(box.y + font * 0.35)}" text-anchor="middle" '
            f'font-size="{font}" fill="{TEXT}">{escape(box.name)}</text></g>'
        )
    w = frame_w + 2 * MARGIN
    h = len(layers) * (frame_h + gap) - gap + 2 * MARGIN + 24  # room for arcs below
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cm-layer-diagram" role="img" '
        f'aria-label="{escape(alt)}" viewBox="0 0 {_fmt(w)} {_fmt(h)}" width="{_fmt(w)}" '
        f'height="{_fmt(h)}" style="max-width: 100%; height: auto" font-family="sans-serif">'
        f"<desc>{escape(alt)}</desc>{''.join(pieces)}</svg>"
    )
