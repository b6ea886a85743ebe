"""Answer a run's feedback queries yourself, in the terminal (``upbringing feedback RUN_DIR``).

:func:`answer_queries` shows each query you have not answered yet, the two segments step by step as text, and
records your answer through :mod:`feedback.answers` (the module the web page uses too), in
``RUN_DIR/feedback/<stage>/human.jsonl`` with ``rater="human:<name>"``: ``a`` (A is better), ``b`` (B is better),
``=`` (equally good), ``s`` (skip: cannot tell; recorded with no label, not asked again) or ``q`` (stop; answers so
far are saved). A run that is still training picks up the answers at its next chunk boundary
(``FeedbackConfig.use_human_answers``).
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TextIO

from upbringing.feedback.answers import HUMAN, QUERIES, load_queries, pending_queries, rater_id, record_answer
from upbringing.feedback.data import Segment

__all__ = ["HUMAN", "QUERIES", "answer_queries", "render_segment"]
_KEYS = {"a": "a", "b": "b", "=": "equal", "s": "skip"}


def render_segment(segment: Segment, label: str) -> str:
    """A segment as people read it: one line per step (its text, else its numbers), then its task reward."""
    lines = [f"--- {label} ({len(segment)} steps) ---"]
    for t in range(len(segment)):
        text = segment.texts[t].strip() if t < len(segment.texts) else ""
        if not text:
            obs = ", ".join(f"{x:.3g}" for x in segment.obs[t]) if t < len(segment.obs) else ""
            text = f"obs [{obs}] -> action {segment.actions[t]}"
        lines.append(f"  {t + 1:>3}. " + text.replace("\n", "\n       "))
    lines.append(f"  task reward: {sum(segment.rewards):.3g}")
    return "\n".join(lines)


def _default_name() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # getuser raises when no login name can be found (e.g. some containers)
        return "anonymous"
    try:
        rater_id(name)
    except ValueError:
        return "anonymous"
    return name


def answer_queries(
    run_dir: str | Path,
    input: TextIO = sys.stdin,
    output: TextIO = sys.stdout,
    *,
    name: str | None = None,
    limit: int | None = None,
) -> int:
    """Ask a person the run's pending queries and record the answers; return how many were recorded.

    Args:
        run_dir: The run folder.
        input: Where answers are read from (one per line).
        output: Where queries and prompts are written.
        name: The person's name in ``rater="human:<name>"`` (default: the login name).
        limit: Stop after this many answers (None: all pending queries).
    """
    rater = rater_id(name or _default_name())
    if not load_queries(run_dir):
        print(f"No feedback queries in {Path(run_dir) / 'feedback'} (has the run asked any yet?).", file=output)
        return 0
    recorded = 0
    for query in pending_queries(run_dir, rater):
        if limit is not None and recorded >= limit:
            return recorded
        print(f"\n=== query {query.query_id} ===", file=output)
        print(render_segment(query.pref.a, "A"), file=output)
        print(render_segment(query.pref.b, "B"), file=output)
        while True:
            print("Which is better? [a/b/= equal/s skip/q quit] ", end="", file=output, flush=True)
            line = input.readline()
            if not line:  # end of input: stop as if 'q'
                print("", file=output)
                return recorded
            choice = line.strip().lower()
            if choice == "q":
                return recorded
            if choice in _KEYS:
                break
            print(f"Please answer a, b, =, s or q (got {line.strip()!r}).", file=output)
        # Saved after every answer, so quitting or an interrupted session loses nothing; an answer the same person
        # gave meanwhile in the web page is kept and this one dropped (one answer per query and rater).
        recorded += record_answer(query, rater, _KEYS[choice], answered_in="terminal").new
    print(f"\nNo more pending queries; {recorded} answer(s) recorded.", file=output)
    return recorded
