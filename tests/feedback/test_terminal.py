"""People answer a run's queries in the terminal, in the same JSONL format; preference data round-trips."""

from __future__ import annotations

import io

from upbringing.feedback.data import Preference, Segment, read_jsonl, write_jsonl
from upbringing.feedback.terminal import answer_queries


def segment(text: str, reward: float) -> Segment:
    return Segment(
        obs=[[0.5, 1.0]], actions=[2], rewards=[reward], events=[{"helped": 1.0}], texts=[text], stage="moral"
    )


def write_queries(run_dir, n: int = 4) -> list[Preference]:
    queries = [
        Preference(
            a=segment(f"You share the bread. ({i})", 1.0),
            b=segment(f"You keep the bread. ({i})", 0.0),
            label=None,
            rater="",
            query_id=f"moral/c0/q{i}",
            meta={"chunk": 0},
        )
        for i in range(n)
    ]
    write_jsonl(run_dir / "feedback" / "moral" / "queries.jsonl", queries)
    return queries


def test_preferences_round_trip_through_jsonl(tmp_path):
    rows = [
        Preference(a=segment("x", 1.0), b=segment("y", 0.0), label=0.5, rater="sim:r", query_id="q", meta={"k": 1}),
        Preference(a=segment("x", 1.0), b=segment("y", 0.0), label=None, rater="human:ann"),
    ]
    write_jsonl(tmp_path / "p.jsonl", rows)
    assert list(read_jsonl(tmp_path / "p.jsonl")) == rows


def test_person_answers_skips_retries_and_quits(tmp_path):
    queries = write_queries(tmp_path)
    out = io.StringIO()
    n = answer_queries(tmp_path, io.StringIO("a\nmaybe\n=\ns\nq\n"), out, name="ann")
    assert n == 3
    shown = out.getvalue()
    assert "You share the bread. (0)" in shown and "You keep the bread. (0)" in shown
    assert "Please answer a, b, =, s or q" in shown
    rows = list(read_jsonl(tmp_path / "feedback" / "moral" / "human.jsonl"))
    assert [r.label for r in rows] == [1.0, 0.5, None]
    assert [r.query_id for r in rows] == [q.query_id for q in queries[:3]]
    assert {r.rater for r in rows} == {"human:ann"}
    assert rows[0].a == queries[0].a and rows[0].b == queries[0].b  # the same segments, the same format

    # Next time only the query not yet answered is shown; end of input stops cleanly.
    out = io.StringIO()
    assert answer_queries(tmp_path, io.StringIO("b\n"), out, name="ann") == 1
    assert "(3)" in out.getvalue() and "(0)" not in out.getvalue()
    assert answer_queries(tmp_path, io.StringIO(""), io.StringIO(), name="ann") == 0
    # Another person gets every query.
    assert answer_queries(tmp_path, io.StringIO(""), io.StringIO(), name="bob", limit=2) == 0
    assert answer_queries(tmp_path, io.StringIO("a\na\na\n"), io.StringIO(), name="bob", limit=2) == 2
    rows = list(read_jsonl(tmp_path / "feedback" / "moral" / "human.jsonl"))
    assert [r.rater for r in rows].count("human:bob") == 2 and [r.label for r in rows][3] == 0.0


def test_run_without_queries_says_so(tmp_path):
    out = io.StringIO()
    assert answer_queries(tmp_path, io.StringIO("a\n"), out, name="ann") == 0
    assert "No feedback queries" in out.getvalue()
