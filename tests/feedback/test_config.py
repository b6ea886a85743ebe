"""A stage's feedback block validates with clear, located problems."""

from __future__ import annotations

import pytest
from upbringing.feedback.config import FeedbackConfig, parse_feedback_config
from upbringing.yamlfile import FileError, parse_yaml

GOOD = """\
feedback:
  mode: mix
  weight: 0.5
  budget: 300
  selection: entropy
  raters:
    - {name: careful, beta: 10.0, epsilon: 0.05}
    - {name: fair-minded, beta: 10.0, profile: {unfair: -2.0}}
"""

BAD = """\
feedback:
  mode: learnt
  budget: 300
  raters:
    - name: careful
      epsilom: 0.05
"""


def test_feedback_block_parses_into_a_frozen_config():
    data, lines = parse_yaml(GOOD, "stage.yaml")
    cfg = parse_feedback_config(data["feedback"], "stage.yaml", lines.sub(["feedback"]))
    assert cfg.mode == "mix" and cfg.weight == 0.5 and cfg.selection == "entropy"
    assert [r.name for r in cfg.raters] == ["careful", "fair-minded"]
    assert cfg.raters[1].profile == {"unfair": -2.0}
    with pytest.raises(ValueError):
        cfg.budget = 1  # type: ignore[misc]  # frozen: the write under test
    assert parse_feedback_config(None, "stage.yaml") == FeedbackConfig()


def test_each_problem_names_file_line_and_key():
    data, lines = parse_yaml(BAD, "stage.yaml")
    with pytest.raises(FileError) as err:
        parse_feedback_config(data["feedback"], "stage.yaml", lines, prefix=["feedback"])
    problems = {p.key: p for p in err.value.problems}
    assert problems["feedback.mode"].line == 2 and "learned" in problems["feedback.mode"].message
    assert problems["feedback.raters[0].epsilom"].line == 6
    assert problems["feedback.raters[0].epsilom"].message == "unknown key"
