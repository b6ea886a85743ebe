"""Answer a run's feedback queries yourself, in the terminal (``upbringing feedback RUN_DIR``).

The training loop writes every query it asks into ``RUN_DIR/feedback/<stage>/queries.jsonl`` (unanswered
:class:`~feedback.data.Preference` rows). :func:`answer_queries` shows each query you have not answered yet, the two
segments step by step as text, and records your answer in ``RUN_DIR/feedback/<stage>/human.jsonl`` in the same
format, with ``rater="human:<name>"``: ``a`` (A is better), ``b`` (B is better), ``=`` (equally good), ``s`` (skip:
cannot tell; recorded with no label, not asked again) or ``q`` (stop; answers so far are saved). A run that is still
training picks up the answers at its next chunk boundary (``FeedbackConfig.use_human_answers``).
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TextIO

from upbringing.feedback.data import Preference, Segment, read_jsonl, write_jsonl

QUERIES = "queries.jsonl"
HUMAN = "human.jsonl"
_ANSWERS = {"a": 1.0, "b": 0.0, "=": 0.5, "s": None}


def pending_query_files(run_dir: str | Path) -> list[Path]:
    """Every ``queries.jsonl`` under ``RUN_DIR/feedback``, in stage-folder order."""
    root = Path(run_dir) / "feedback"
    return sorted(root.rglob(QUERIES)) if root.is_dir() else []


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
        return getpass.getuser() or "anonymous"
    except Exception:  # getuser raises when no login name can be found (e.g. some containers)
        return "anonymous"


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
    rater = f"human:{name or _default_name()}"
    files = pending_query_files(run_dir)
    if not files:
        print(f"No feedback queries in {Path(run_dir) / 'feedback'} (has the run asked any yet?).", file=output)
        return 0
    recorded = 0
    for queries_path in files:
        human_path = queries_path.with_name(HUMAN)
        answers = list(read_jsonl(human_path)) if human_path.exists() else []
        done = {p.query_id for p in answers if p.rater == rater}
        pending = [q for q in read_jsonl(queries_path) if q.query_id not in done]
        for query in pending:
            if limit is not None and recorded >= limit:
                return recorded
            print(f"\n=== query {query.query_id} ===", file=output)
            print(render_segment(query.a, "A"), file=output)
            print(render_segment(query.b, "B"), file=output)
            while True:
                print("Which is better? [a/b/= equal/s skip/q quit] ", end="", file=output, flush=True)
                line = input.readline()
                if not line:  # end of input: stop as if 'q'
                    print("", file=output)
                    return recorded
                choice = line.strip().lower()
                if choice == "q":
                    return recorded
                if choice in _ANSWERS:
                    break
                print(f"Please answer a, b, =, s or q (got {line.strip()!r}).", file=output)
            answers.append(
                Preference(
                    a=query.a,
                    b=query.b,
                    label=_ANSWERS[choice],
                    rater=rater,
                    query_id=query.query_id,
                    meta={**query.meta, "answered_in": "terminal"},
                )
            )
            # Saved after every answer, so quitting or an interrupted session loses nothing.
            write_jsonl(human_path, answers)
            recorded += 1
    print(f"\nNo more pending queries; {recorded} answer(s) recorded.", file=output)
    return recorded
