"""Aligned plain-text tables for the command line (summaries, evaluations, comparisons)."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as aligned text lines, the first row a header underlined with dashes."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for k, r in enumerate(rows):
        out.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    return out


def number(value: float | None, spec: str = ".2f") -> str:
    """A number as a table cell (``spec`` as in :func:`format`); ``-`` for a missing one."""
    return "-" if value is None else format(value, spec)
