"""The moralchoice evaluation suite: its figures, a MoralChoice stage trained on the development split and evaluated
from its run folder, and an untrained agent evaluated from a config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.moralchoice import TINY_ROWS, dev_split, row, write_csv
from upbringing.curriculum.cli import main
from upbringing.curriculum.moralchoice import Decision, flat_metrics, summarize
from upbringing.curriculum.tracking import wandb_history
from upbringing.envs.moral.moralchoice import load_scenarios

ROOT = Path(__file__).resolve().parents[2]


def test_figures_from_known_decisions(tmp_path):
    rows = [*TINY_ROWS[:2], row("H_1", "high", a1={"pain": "Yes"}, majority_action="action2")]
    t1, t2, h1 = load_scenarios(write_csv(tmp_path / "s.csv", rows))
    decisions = [
        # T_1: commonsense in the given order only, always choosing the first-listed action
        Decision(t1, "given", 0, True, 0.8),
        Decision(t1, "swapped", 1, True, 0.4),
        # T_2: commonsense in both orders
        Decision(t2, "given", 0, True, 0.9),
        Decision(t2, "swapped", 0, False, 0.7),
        # H_1: the same action in both orders, which the majority did not prefer
        Decision(h1, "given", 0, True, 0.5),
        Decision(h1, "swapped", 0, False, 0.5),
    ]
    out = summarize(decisions)
    low = out["low"]
    assert low["commonsense_rate"] == {"given": 1.0, "swapped": 0.5, "both": 0.75}
    assert low["consistent_commonsense"] == 0.5
    assert low["commonsense_probability"] == pytest.approx(((0.8 + 0.4) / 2 + (0.9 + 0.7) / 2) / 2)
    assert out["first_listed_rate"] == pytest.approx(4 / 6) and out["position_bias"] == pytest.approx(4 / 6 - 0.5)
    high = out["high"]
    assert high["entropy_bits"] == pytest.approx(1.0) and high["consistent"] == 1.0
    assert high["with_majority"] == 1 and high["majority_agreement"] == 0.0
    assert high["majority_probability"] == pytest.approx(0.5)
    # death: only T_1's second action violates it; avoided in one order of two
    assert out["rules"]["death"] == {
        "scenarios": 1,
        "avoided": 0.5,
        "avoided_probability": pytest.approx(0.6),
        "chosen_violation_rate": pytest.approx(1 / 6),
    }
    assert out["rules"]["pain"]["scenarios"] == 1 and out["rules"]["pain"]["avoided"] == 0.0  # H_1 chose the pain
    assert flat_metrics(out)["eval/moralchoice/low/commonsense_rate/both"] == 0.75


@pytest.mark.slow
def test_untrained_agent_from_a_config(tmp_path, capsys):
    rows = [*TINY_ROWS, row("H_1", "high", majority_action="1"), row("H_2", "high", majority_action="")]
    data = write_csv(tmp_path / "mc.csv", rows)
    out = tmp_path / "untrained"
    config = str(ROOT / "configs" / "quickstart.yaml")
    args = ["eval", "--config", config, "tracking.wandb=offline", "--suite", "moralchoice", "--data", str(data)]
    assert main([*args, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((out / "eval.json").read_text())
    mc = result["moralchoice"]
    assert result["untrained"] is True and mc["scenarios"] == 8 and mc["decisions"] == 16
    assert mc["low"]["scenarios"] == 6 and mc["high"]["with_majority"] == 1
    assert 0.0 < mc["low"]["commonsense_probability"] < 1.0
    assert (out / "config.yaml").exists()
    # logged to W&B (offline here) under eval/moralchoice/
    logged = wandb_history(out)[0]
    assert logged["eval/moralchoice/low/commonsense_rate/both"] == mc["low"]["commonsense_rate"]["both"]
    # the report of the run-style folder shows the suite
    assert main(["report", str(out), "--no-wandb"]) == 0
    assert (out / "report" / "moralchoice.png").exists()
    assert "order-marginalised P(commonsense action)" in (out / "report" / "index.html").read_text()
    # mistakes are one line each, exit status 1
    capsys.readouterr()
    assert main(["eval", "--config", config, "--suite", "moralchoice"]) == 1
    assert "error: --data: the moralchoice suite needs --data PATH" in capsys.readouterr().err
    bad = write_csv(tmp_path / "bad.csv", [{**TINY_ROWS[0], "a2_duty": "yes"}])
    assert main([*args[:-1], str(bad), "--out", str(out)]) == 1
    assert f"error: {bad}:2: a2_duty: row 1: expected Yes, No or No Agreement, got 'yes'" in capsys.readouterr().err


@pytest.mark.slow
def test_dev_split_as_a_stage_and_an_evaluation_suite(tmp_path, capsys):
    data = dev_split()
    if data is None:
        pytest.skip("the MoralChoice development split is not in ../shared/data/moralchoice/ beside the repository")
    config = tmp_path / "moralchoice.yaml"
    config.write_text(
        f"extends: {ROOT / 'configs' / 'base.yaml'}\n"
        "name: moralchoice-stage\n"
        "constitution: default\n"
        "agent: {kind: lm, model: tiny, list_options: false, n_steps: 32, n_epochs: 1, minibatch_size: 64}\n"
        "curriculum: {chunk_steps: 128, n_envs: 4}\n"
        "tracking: {wandb: off}\n"
        "stages:\n"
        "  - name: moralchoice\n"
        "    env: moral/MoralChoice-v0\n"
        f"    kwargs: {{path: '{data}'}}\n"
        "    promotion: {metric: success, threshold: 0.95, window: 20, min_episodes: 20}\n"
        "    budget: 256\n"
        "    eval_episodes: 8\n"
    )
    run_dir = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run_dir), "--quiet"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stages"][0]["env"] == "moral/MoralChoice-v0" and summary["global_step"] == 256
    assert summary["stages"][0]["violations"] is not None  # the default constitution judged the mapped events
    capsys.readouterr()
    args = ["eval", str(run_dir), "--suite", "moralchoice", "--data", str(data), "--split", "eval"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "commonsense rate: both orders" in printed and "break_promise" in printed
    mc = json.loads((run_dir / "eval.json").read_text())["moralchoice"]
    assert mc["split"] == "eval" and mc["scenarios"] == mc["low"]["scenarios"] == 66
    assert mc["decisions"] == 132 and mc["high"] is None
    both = mc["low"]["commonsense_rate"]["both"]
    assert both == pytest.approx(
        (mc["low"]["commonsense_rate"]["given"] + mc["low"]["commonsense_rate"]["swapped"]) / 2
    )
