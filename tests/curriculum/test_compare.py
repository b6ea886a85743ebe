"""Transfer metrics on synthetic learning curves with known answers, and curves read back from run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from upbringing.curriculum.cli import main
from upbringing.curriculum.compare import (
    Curve,
    area_under_curve,
    asymptotic_performance,
    compare_curves,
    compare_runs,
    difference_ci,
    initial_performance,
    mean_ci,
    ratio_ci,
    run_curve,
    time_to_threshold,
    transfer_ratio,
)
from upbringing.yamlfile import FileError

RAMP = Curve.of([0, 10, 20, 30], [0.0, 0.5, 1.0, 1.0])


def test_point_metrics_of_a_ramp():
    assert initial_performance(RAMP) == 0.0
    assert time_to_threshold(RAMP, 0.9) == 20
    assert time_to_threshold(RAMP, 0.5) == 10
    assert time_to_threshold(RAMP, 1.5) is None  # never reached: censored
    assert asymptotic_performance(RAMP, tail=2) == 1.0
    assert asymptotic_performance(RAMP, tail=3) == pytest.approx(2.5 / 3)


def test_area_is_mean_performance_over_the_horizon():
    # trapezoids 2.5 + 7.5 + 10 over 30 steps
    assert area_under_curve(RAMP, 30) == pytest.approx(20 / 30)
    # cut inside a segment: the value at 15 is interpolated (0.75)
    assert area_under_curve(RAMP, 15) == pytest.approx((2.5 + (0.5 + 0.75) / 2 * 5) / 15)
    # a curve that starts late holds its first value back to 0 and its last value past its end
    late = Curve.of([10, 20], [0.4, 0.8])
    assert area_under_curve(late, 40) == pytest.approx((0.4 * 10 + 0.6 * 10 + 0.8 * 20) / 40)
    flat = Curve.of([5], [0.7])
    assert area_under_curve(flat, 100) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="horizon"):
        area_under_curve(RAMP, 0)


def test_transfer_ratio_and_bad_curves():
    assert transfer_ratio(0.6, 0.3) == pytest.approx(2.0)
    assert transfer_ratio(0.6, 0.0) is None
    with pytest.raises(ValueError, match="non-decreasing"):
        Curve.of([0, 20, 10], [0, 1, 1])
    with pytest.raises(ValueError, match="as many"):
        Curve.of([0, 1], [0])


def test_mean_interval_is_student_t():
    ci = mean_ci([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert ci["mean"] == pytest.approx(2.0) and ci["n"] == 3
    assert (ci["low"], ci["high"]) == pytest.approx((2.0 - half, 2.0 + half))
    one = mean_ci([4.0, None])  # missing values (censored runs) are left out; one value gives no interval
    assert one == {"mean": 4.0, "low": None, "high": None, "n": 1}


def test_difference_interval_matches_welch():
    a, b = [5.0, 7.0, 6.5, 8.0], [3.0, 2.0, 4.5]
    ours = difference_ci(a, b, 0.9)
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.9)
    assert ours["difference"] == pytest.approx(np.mean(a) - np.mean(b))
    assert (ours["low"], ours["high"]) == pytest.approx((ref.low, ref.high))


def test_ratio_interval_is_reproducible_and_brackets_the_ratio():
    a, b = [0.9, 0.8, 0.85], [0.4, 0.5, 0.45]
    r = ratio_ci(a, b)
    assert r["ratio"] == pytest.approx(np.mean(a) / np.mean(b))
    assert r["low"] < r["ratio"] < r["high"]
    assert ratio_ci(a, b) == r
    assert ratio_ci(a, [0.0, 0.0])["ratio"] is None


def test_compare_curves_against_the_control():
    # the treatment starts higher by 0.2 and reaches 0.8 in 10 steps; the control needs 30
    treat = [Curve.of([0, 10, 20, 40], [0.2 + d, 0.8, 0.9, 0.9]) for d in (0.0, 0.02, 0.04)]
    control = [Curve.of([0, 10, 30, 40], [0.0 + d, 0.4, 0.8, 0.9]) for d in (0.0, 0.02, 0.04)]
    late = Curve.of([0, 40], [0.0, 0.5])  # a control seed that never gets there
    out = compare_curves({"sequential": treat, "direct": [*control, late]}, threshold=0.8, horizon=40)
    assert out["reference"] == "direct"  # the control group is the reference by default
    seq, ctl = out["groups"]["sequential"], out["groups"]["direct"]
    assert seq["time_to_threshold"]["mean"] == 10 and seq["reached"] == 3
    assert ctl["time_to_threshold"]["mean"] == 30 and ctl["reached"] == 3 and ctl["runs"] == 4
    assert ctl["values"]["time_to_threshold"][-1] is None
    versus = out["versus_reference"]["sequential"]
    assert versus["jumpstart"]["difference"] == pytest.approx(0.22 - 0.015)
    assert versus["time_to_threshold"]["difference"] == pytest.approx(-20)
    auc_t = [area_under_curve(c, 40) for c in treat]
    auc_c = [area_under_curve(c, 40) for c in [*control, late]]
    assert versus["transfer_ratio"]["ratio"] == pytest.approx(np.mean(auc_t) / np.mean(auc_c))
    assert versus["transfer_ratio"]["ratio"] > 1
    # without a horizon the shortest curve's last step is used
    assert compare_curves({"a": [RAMP], "b": [Curve.of([0, 20], [0, 1])]}, 0.5)["horizon"] == 20
    with pytest.raises(ValueError, match="reference group"):
        compare_curves({"a": [RAMP]}, 0.5, reference="direct")


# ------------------------------------------------------------------------------------------- run folders
CONFIG = """\
name: synthetic
seed: {seed}
agent: {{kind: sb3_ppo}}
curriculum: {{teacher: {teacher}, chunk_steps: 1024, n_envs: 4}}
tracking: {{wandb: 'off'}}
stages:
  - name: warmup
    env: physics/ObjectPermanence-v0
    promotion: {{threshold: 0.9}}
    budget: 4096
  - name: stories
    env: moral/Stories-v0
    levels: [{{level: 0}}, {{level: 1}}]
    promotion: {{threshold: 0.8}}
    budget: 8192
"""


def fake_run(root: Path, teacher: str, seed: int, points: list[tuple[int, int, int, float]], mastery: int | None):
    """A run folder whose events hold evaluations of the last stage: (global step, stage steps, level, score)."""
    run = root / f"{teacher}-{seed}"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG.format(seed=seed, teacher=teacher))
    rows = []
    for step, stage_steps, level, score in points:
        rows.append({"kind": "metrics", "step": step, "metrics": {"curriculum/stories/steps": stage_steps}})
        rows.append({"kind": "evaluation", "step": step, "stage": "stories", "level": level, "score": score})
    (run / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    last = points[-1]
    stage = {"name": "stories", "mastered": mastery is not None, "steps_to_mastery": mastery, "skipped": False}
    stage.update(steps=last[1], final_score=0.95)
    summary = {"global_step": last[0], "stages": [{"name": "warmup", "skipped": teacher == "direct"}, stage]}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_run_curve_keeps_the_last_level_and_counts_all_steps(tmp_path):
    run = fake_run(tmp_path, "sequential", 0, [(5000, 1024, 0, 0.9), (6000, 2048, 1, 0.5), (7000, 3072, 1, 0.85)], 3072)
    rc = run_curve(run)
    assert rc.stage == "stories" and rc.group == "sequential" and rc.threshold == 0.8
    # the level-0 evaluation is left out; its training steps still count; the final score closes the curve
    assert rc.curve.x == (2048, 3072, 3072) and rc.curve.y == (0.5, 0.85, 0.95)
    assert rc.total.x == (6000, 7000, 7000)
    assert rc.steps_to_mastery == 3072
    with pytest.raises(FileError, match="no stage 'nope'"):
        run_curve(run, stage="nope")
    with pytest.raises(FileError, match="not a run folder"):
        run_curve(tmp_path)


def test_compare_runs_groups_by_teacher_and_the_cli_prints_json(tmp_path, capsys):
    runs = []
    for seed in range(2):
        pts = [(4096 + 1024 * k, 1024 * k, 1, s) for k, s in ((1, 0.5 + seed / 10), (2, 0.9), (3, 0.9))]
        runs.append(fake_run(tmp_path, "sequential", seed, pts, 2048))
        pts = [(1024 * k, 1024 * k, 1, s) for k, s in ((1, 0.2), (2, 0.4), (3, 0.6), (4, 0.85 + seed / 20))]
        runs.append(fake_run(tmp_path, "direct", seed, pts, None if seed else 4096))
    result = compare_runs(runs)
    assert result["stage"] == "stories" and result["reference"] == "direct"
    seq, ctl = result["groups"]["sequential"], result["groups"]["direct"]
    assert seq["time_to_threshold"]["mean"] == 2048 and ctl["time_to_threshold"]["mean"] == 4096
    assert seq["total_time_to_threshold"]["mean"] == 4096 + 2048  # the earlier stage's steps are the price
    assert ctl["steps_to_mastery"]["mean"] == 4096 and ctl["mastered"] == 1 and seq["mastered"] == 2
    assert result["versus_reference"]["sequential"]["time_to_threshold"]["difference"] == -2048

    assert main(["compare", *map(str, runs), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["groups"]["sequential"]["runs"] == 2
    assert main(["compare", *map(str, runs)]) == 0
    text = capsys.readouterr().out
    assert "direct (control)" in text and "transfer ratio" in text
    assert main(["compare", str(tmp_path / "missing")]) == 1
    assert "run folder not found" in capsys.readouterr().err
