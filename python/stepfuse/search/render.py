"""Render a search tree to a standalone HTML file (inline SVG, no graphviz needed), a PNG
(matplotlib), or DOT text. Layout: leaves in depth-first order on the x axis, parents centred over
their children, depth on the y axis."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from stepfuse._core import SearchTree
from stepfuse.errors import InvalidArgumentError, InvalidTypeError, LimitExceededError


def _layout(tree: SearchTree, root: int, max_nodes: int) -> tuple[list[int], dict[int, tuple[float, int]]]:
    order: list[int] = []
    pos: dict[int, tuple[float, int]] = {}
    counts = tree.child_counts()
    depth = tree.depths()
    next_x = 0.0

    def visit(n: int) -> float:
        nonlocal next_x
        order.append(n)
        if len(order) > max_nodes:
            raise LimitExceededError(f"max_nodes exceeds the limit of {max_nodes} (tree to render is larger)")
        if counts[n] == 0:
            x = next_x
            next_x += 1.0
        else:
            xs = [visit(int(c)) for c in tree.children(n)]
            x = (xs[0] + xs[-1]) / 2
        pos[n] = (x, int(depth[n] - depth[root]))
        return x

    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 4 * max_nodes + 100))
    try:
        visit(root)
    finally:
        sys.setrecursionlimit(old)
    return order, pos


def tree_svg(tree: SearchTree, root: int | None = None, *, max_nodes: int = 2000, max_label: int = 24) -> str:
    """Inline SVG of the subtree under ``root`` (default: the first root)."""
    if not isinstance(tree, SearchTree):
        raise InvalidTypeError(f"tree: must be a SearchTree, got {type(tree).__name__}")
    if len(tree.roots) == 0:
        raise InvalidArgumentError("tree: has no root")
    r = int(tree.roots[0]) if root is None else int(root)
    order, pos = _layout(tree, r, max_nodes)
    parents = tree.parents()
    visits = tree.visits()
    q = tree.values()
    term = tree.terminal()
    texts = tree.texts(np.asarray(order, dtype=np.int64))
    dx, dy, pad = 120.0, 70.0, 40.0
    width = pad * 2 + dx * (max(p[0] for p in pos.values()) + 1)
    height = pad * 2 + dy * (max(p[1] for p in pos.values()) + 1)
    vmax = max(1, int(visits[order].max()))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        'font-family="monospace" font-size="10">'
    ]
    for n in order:
        if n != r:
            (x0, y0), (x1, y1) = pos[int(parents[n])], pos[n]
            parts.append(
                f'<line x1="{pad + x0 * dx:.1f}" y1="{pad + y0 * dy:.1f}" x2="{pad + x1 * dx:.1f}" '
                f'y2="{pad + y1 * dy:.1f}" stroke="#999" stroke-width="{1 + 3 * visits[n] / vmax:.2f}"/>'
            )
    for n, text in zip(order, texts):
        x, y = pos[n]
        cx, cy = pad + x * dx, pad + y * dy
        label = text if len(text) <= max_label else text[: max_label - 1] + "…"
        qv = "-" if np.isnan(q[n]) else f"{q[n]:.2f}"
        fill = "#fde0c5" if term[n] else "#dbe9f6"
        tip = html.escape(f"#{n} N={visits[n]} Q={qv}\n{text}")
        parts.append(
            f'<g><title>{tip}</title><rect x="{cx - 55:.1f}" y="{cy - 14:.1f}" width="110" height="28" rx="4" '
            f'fill="{fill}" stroke="#555"/><text x="{cx:.1f}" y="{cy - 2:.1f}" text-anchor="middle">'
            f"{html.escape(label)}</text><text x=\"{cx:.1f}\" y=\"{cy + 10:.1f}\" text-anchor=\"middle\" "
            f'fill="#444">N={visits[n]} Q={qv}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_tree(tree: SearchTree, path: str | Path, root: int | None = None, *, max_nodes: int = 2000) -> Path:
    """Write the subtree under ``root`` to ``path``: ``.html`` (standalone, inline SVG), ``.svg``,
    ``.png`` (matplotlib) or ``.dot`` (graphviz text). Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".dot":
        path.write_text(tree.to_dot(), encoding="utf-8")
    elif suffix in (".html", ".htm"):
        svg = tree_svg(tree, root, max_nodes=max_nodes)
        path.write_text(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>search tree</title></head>"
            f"<body>\n{svg}\n</body></html>\n",
            encoding="utf-8",
        )
    elif suffix == ".svg":
        path.write_text(tree_svg(tree, root, max_nodes=max_nodes), encoding="utf-8")
    elif suffix == ".png":
        _png(tree, path, root, max_nodes)
    else:
        raise InvalidArgumentError(f"path: unsupported suffix {suffix!r} (use .html, .svg, .png or .dot)")
    return path


def _png(tree: SearchTree, path: Path, root: int | None, max_nodes: int) -> None:
    from stepfuse.errors import require

    mpl = require("matplotlib", "dev")
    mpl.use("Agg")  # type: ignore[attr-defined]
    import matplotlib.pyplot as plt

    r = int(tree.roots[0]) if root is None else int(root)
    order, pos = _layout(tree, r, max_nodes)
    parents = tree.parents()
    visits = tree.visits()
    term = tree.terminal()
    texts = tree.texts(np.asarray(order, dtype=np.int64))
    w = max(p[0] for p in pos.values()) + 1
    h = max(p[1] for p in pos.values()) + 1
    fig, ax = plt.subplots(figsize=(min(2 + w * 1.2, 60), min(1.5 + h * 0.9, 40)))
    for n in order:
        if n != r:
            (x0, y0), (x1, y1) = pos[int(parents[n])], pos[n]
            ax.plot([x0, x1], [-y0, -y1], color="#999", lw=0.5 + 2 * visits[n] / max(1, visits[r]), zorder=1)
    for n, text in zip(order, texts):
        x, y = pos[n]
        ax.text(x, -y, f"{text[:16]}\nN={visits[n]}", ha="center", va="center", fontsize=7, zorder=2,
                bbox={"boxstyle": "round", "fc": "#fde0c5" if term[n] else "#dbe9f6", "ec": "#555"})
    ax.set_xlim(-0.7, w - 0.3)
    ax.set_ylim(-h + 0.4, 0.6)
    ax.set_axis_off()
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01)
    fig.savefig(path, dpi=100)
    plt.close(fig)
