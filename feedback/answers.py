"""A run's feedback queries and people's answers: the one module the terminal and the web page both use.

The training loop writes every query it asks into ``RUN_DIR/feedback/<stage>/queries.jsonl`` (unanswered
:class:`~feedback.data.Preference` rows). People's answers go to ``RUN_DIR/feedback/<stage>/human.jsonl`` in the same
format, with ``rater="human:<name>"`` and ``label`` 1.0 (A is better), 0.0 (B), 0.5 (equally good) or None (skipped:
cannot tell; recorded so it is not asked again, never trained on). A run that is still training reads the file at its
next chunk boundary (``FeedbackConfig.use_human_answers``).

:func:`record_answer` is the only writer: it holds an exclusive ``flock`` on ``human.jsonl.lock`` while it reads the
file, checks that this rater has not answered this query yet, and rewrites the file atomically (temp file + rename).
So the terminal, several browser tabs and several raters can answer at once, and a repeated answer (a page reload,
a second tab, a retried request) is recorded once: answers are idempotent by (query id, rater).
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from upbringing.feedback.data import Preference, read_jsonl, write_jsonl

QUERIES = "queries.jsonl"
HUMAN = "human.jsonl"
PREFERENCES = "preferences.jsonl"
Answer = Literal["a", "b", "equal", "skip"]
LABELS: dict[str, float | None] = {"a": 1.0, "b": 0.0, "equal": 0.5, "skip": None}
"""Answer name -> the label saved (the probability that A is preferred; None: skipped)."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,39}")


@dataclass(frozen=True)
class Query:
    """One query the run asked, and where its answers go.

    Attributes:
        pref: The unanswered comparison (segments ``a`` and ``b``, ``query_id``, ``meta``).
        folder: The stage's feedback folder (holds ``queries.jsonl`` and ``human.jsonl``).
    """

    pref: Preference
    folder: Path

    @property
    def query_id(self) -> str:
        return self.pref.query_id

    @property
    def stage(self) -> str:
        """The stage the segments come from (the folder name when the segments do not say)."""
        return self.pref.a.stage or self.folder.name


@dataclass(frozen=True)
class Recorded:
    """What :func:`record_answer` did.

    Attributes:
        row: The saved row (the earlier one when this rater had answered already).
        new: Whether this call wrote it (False: answered before, nothing written).
    """

    row: Preference
    new: bool


@dataclass(frozen=True)
class Progress:
    """How far one rater is through a run's queries.

    Attributes:
        answered: Queries this rater has answered (skips included).
        asked: Queries the run has asked so far.
        budget: The run's total query budget over its feedback stages (0 when the queries do not say).
    """

    answered: int
    asked: int
    budget: int
    per_stage: dict[str, tuple[int, int]] = field(default_factory=dict)


def rater_id(name: str) -> str:
    """``human:<name>`` for a valid name (letters, digits, ``_ . @ -``, up to 40 characters); else a ValueError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"rater name must be 1-40 letters, digits or _ . @ - (starting with a letter or digit), got {name!r}"
        )
    return f"human:{name}"


def query_files(run_dir: str | Path) -> list[Path]:
    """Every ``queries.jsonl`` under ``RUN_DIR/feedback``, in stage-folder order."""
    root = Path(run_dir) / "feedback"
    return sorted(root.rglob(QUERIES)) if root.is_dir() else []


def load_queries(run_dir: str | Path) -> list[Query]:
    """Every query the run has asked, stage folder by stage folder, in the order asked (first of a repeated id)."""
    out: list[Query] = []
    seen: set[str] = set()
    for path in query_files(run_dir):
        for pref in read_jsonl(path):
            if pref.query_id and pref.query_id not in seen:
                seen.add(pref.query_id)
                out.append(Query(pref, path.parent))
    return out


def load_answers(folder: Path) -> list[Preference]:
    """The people's answers saved in a stage folder (none yet: empty)."""
    path = folder / HUMAN
    return list(read_jsonl(path)) if path.exists() else []


def answered_ids(run_dir: str | Path, rater: str) -> set[str]:
    """Ids of the queries ``rater`` (``human:<name>``) has answered, skips included."""
    folders = {p.parent for p in query_files(run_dir)}
    return {p.query_id for f in folders for p in load_answers(f) if p.rater == rater}


def pending_queries(run_dir: str | Path, rater: str) -> list[Query]:
    """The queries ``rater`` has not answered yet, in the order asked."""
    done = answered_ids(run_dir, rater)
    return [q for q in load_queries(run_dir) if q.query_id not in done]


def progress(run_dir: str | Path, rater: str) -> Progress:
    """How many queries ``rater`` has answered, out of those asked and the stages' budgets."""
    queries = load_queries(run_dir)
    done = answered_ids(run_dir, rater)
    per_stage: dict[str, tuple[int, int]] = {}
    budgets: dict[str, int] = {}
    for q in queries:
        answered, asked = per_stage.get(q.stage, (0, 0))
        per_stage[q.stage] = (answered + (q.query_id in done), asked + 1)
        budget = q.pref.meta.get("budget")
        if isinstance(budget, int):
            budgets[q.stage] = budget
    answered = sum(a for a, _ in per_stage.values())
    return Progress(answered=answered, asked=len(queries), budget=sum(budgets.values()), per_stage=per_stage)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    # flock locks an open file description, so it excludes other threads of this process as well as other processes
    # (the terminal command, a second server) that answer into the same folder.
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{HUMAN}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def record_answer(
    query: Query, rater: str, answer: str, *, answered_in: str, extra: dict[str, Any] | None = None
) -> Recorded:
    """Save ``rater``'s answer to ``query`` in the stage's ``human.jsonl``, once.

    Args:
        query: The query answered (from :func:`load_queries`).
        rater: ``human:<name>`` (see :func:`rater_id`).
        answer: ``a``, ``b``, ``equal`` or ``skip``.
        answered_in: Where it was answered (``terminal``, ``web``), kept in the row's meta.
        extra: More meta to keep (e.g. the step that decided it).

    Returns:
        The saved row and whether this call wrote it (a repeated answer writes nothing and returns the first).

    Raises:
        ValueError: An answer other than the four.
    """
    if answer not in LABELS:
        raise ValueError(f"answer must be one of {', '.join(LABELS)}, got {answer!r}")
    with _locked(query.folder):
        answers = load_answers(query.folder)
        for row in answers:
            if row.query_id == query.query_id and row.rater == rater:
                return Recorded(row, new=False)
        row = Preference(
            a=query.pref.a,
            b=query.pref.b,
            label=LABELS[answer],
            rater=rater,
            query_id=query.query_id,
            meta={**query.pref.meta, "answered_in": answered_in, **(extra or {})},
        )
        write_jsonl(query.folder / HUMAN, [*answers, row])
    return Recorded(row, new=True)
