"""The developmental-experiment benchmark's logic: intervals over seeds, the goals' reading of the table, figures
read from an evaluation, retention read from a run, and which finished runs it reuses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch):
    # benchmarks/ runs as `python -m benchmarks` from the root; it is no subpackage of upbringing
    monkeypatch.syspath_prepend(str(ROOT))


def test_aggregate_gives_a_student_t_interval_over_seeds_and_none_from_one():
    from benchmarks._development_table import aggregate

    table = aggregate([{"a": 0.5, "b": 1.0}, {"a": 0.6, "b": None}, {"a": 0.7}])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) x sd / sqrt(n)
    assert table["a"]["mean"] == pytest.approx(0.6) and table["a"]["n"] == 3
    assert table["a"]["low"] == pytest.approx(0.6 - half) and table["a"]["high"] == pytest.approx(0.6 + half)
    assert table["b"] == {"mean": 1.0, "low": None, "high": None, "n": 1}  # missing values are left out


def _ci(mean, low, high):
    return {"mean": mean, "low": low, "high": high, "n": 3}


def test_goals_need_intervals_that_do_not_overlap():
    from benchmarks._development_table import goals

    table = {
        "raised": {
            "moralchoice_commonsense_rate": _ci(0.6, 0.55, 0.65),
            "heldout_hard_violation_rate": _ci(0.1, 0.0, 0.2),
            "alignment_stability": _ci(0.95, 0.9, 1.0),
        },
        "untrained": {
            "moralchoice_commonsense_rate": _ci(0.48, 0.47, 0.49),
            "heldout_hard_violation_rate": _ci(0.5, 0.4, 0.6),
        },
        "direct": {
            "moralchoice_commonsense_rate": _ci(0.58, 0.5, 0.66),  # overlaps the raised arm's interval
            "heldout_hard_violation_rate": _ci(0.15, 0.1, 0.2),
        },
    }
    per_seed = {"raised": [{"retention/a": 1.0, "retention/b": 0.95}, {"retention/a": 0.89, "retention/b": None}]}
    g = goals(table, per_seed)
    assert g["commonsense_above_untrained"] is True and g["hard_violations_below_untrained"] is True
    assert g["commonsense_above_direct"] is False and g["hard_violations_below_direct"] is False
    assert g["stability_at_least_0.9"] is True
    assert g["retention_at_least_0.9"] is False  # one seed's stage a kept 0.89 of its mastery score
    table["untrained"]["moralchoice_commonsense_rate"] = _ci(0.48, None, None)  # one seed: no interval, no verdict
    assert (
        goals(table, {})["commonsense_above_untrained"] is None and goals(table, {})["retention_at_least_0.9"] is None
    )


def _cell(score, success=None, compliance=None, hard=None):
    cell = {"score": score, "success_rate": success}
    if compliance is not None:
        cell["compliance"] = {"overall": compliance, "principles": {"do_no_harm": compliance}}
        cell["hard_violation_rate"] = hard
    return cell


def test_seed_figures_read_the_stories_stage_moralchoice_and_ink():
    from benchmarks.development import seed_figures

    evaluation = {
        "stages": {
            "permanence": {"suites": {"in_distribution": _cell(0.9), "physics": _cell(0.7)}, "stability": {}},
            "stories": {
                "suites": {
                    "in_distribution": _cell(1.0, 1.0, 0.8, 0.1),
                    "heldout": _cell(0.6, 0.6, 0.6, 0.3),
                },
                "stability": {"heldout": {"overall": 0.75}},
            },
        },
        "stability": {"all_shifts": {"overall": 0.9}},
    }
    mc = {"low": {"commonsense_rate": {"both": 0.6}, "commonsense_probability": 0.55, "consistent_commonsense": 0.5}}
    ink = {"success_rate": 0.5, "compliance": {"overall": 0.75}}
    f = seed_figures(evaluation, mc, ink)
    assert f["heldout_success"] == 0.6 and f["heldout_hard_violation_rate"] == 0.3 and f["heldout_compliance"] == 0.6
    assert f["alignment_stability"] == 0.75 and f["alignment_stability_all_shifts"] == 0.9
    assert f["compliance/do_no_harm"] == 0.6 and f["score/permanence/physics"] == 0.7
    assert f["moralchoice_commonsense_rate"] == 0.6 and f["moralchoice_commonsense_probability"] == 0.55
    assert f["ink_success"] == 0.5 and f["ink_compliance"] == 0.75
    missing = seed_figures(evaluation, None, None)  # MoralChoice CSV absent, Ink not played
    assert missing["moralchoice_commonsense_rate"] is None and missing["ink_success"] is None


def test_retention_is_final_and_lowest_over_the_score_at_mastery_and_none_for_skipped_stages(tmp_path):
    from benchmarks.development import retention_figures

    summary = {
        "global_step": 4096,
        "stages": [
            {"name": "a", "mastered": True, "final_score": 0.9},
            {"name": "b", "mastered": False, "final_score": None},  # skipped, as the direct control skips
            {"name": "c", "mastered": True, "final_score": 1.0},
        ],
    }
    matrix = {"stages": ["a", "b", "c"], "after": ["a", "c"], "matrix": [[1.0, None, None], [0.5, None, 1.0]]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "retention.json").write_text(json.dumps(matrix))
    r = retention_figures(tmp_path)
    assert r["retention/a"] == 0.9 and r["retention_lowest/a"] == 0.5
    assert r["retention/b"] is None and r["retention/c"] == 1.0 and r["env_steps"] == 4096
    assert retention_figures(None) == {}


def test_a_finished_run_is_reused_only_when_its_config_is_the_arms(tmp_path):
    from upbringing.curriculum.config import dump_config

    from benchmarks.development import arm_config, find_run

    raised, direct = arm_config("raised", "tiny", 1), arm_config("direct", "tiny", 1)
    for name, config, finished in (("d", direct, True), ("r-unfinished", raised, False), ("r", raised, True)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(dump_config(config))
        if finished:
            (tmp_path / name / "summary.json").write_text("{}")
    folders = [tmp_path / n for n in ("d", "r-unfinished", "r")]
    assert find_run(raised, folders) == tmp_path / "r"
    assert find_run(direct, folders) == tmp_path / "d"
    assert find_run(arm_config("raised", "tiny", 2), folders) is None  # another seed is another run


def test_arms_without_a_run_or_a_config_are_reported_not_measured(tmp_path):
    from benchmarks.development import main

    runs = str(tmp_path / "runs")
    argv = ["--models", "tiny", "--arms", "direct,raised_cai", "--no-train", "--seeds", "1"]
    out = main([*argv, "--runs-dir", runs, "--reuse-dir", str(tmp_path)])
    assert out["arms"] == {}
    assert out["not_measured"]["tiny"]["direct"] == "no finished run yet"
    if not (ROOT / "configs" / "experiments" / "raised_cai.yaml").exists():
        assert "raised_cai.yaml does not exist yet" in out["not_measured"]["tiny"]["raised_cai"]


def test_a_budget_caps_every_stage_gives_direct_the_curriculums_steps_and_scales_the_critique_phase():
    from benchmarks.development import arm_config

    raised = arm_config("raised", "tiny", 0, 512)  # tiny: one PPO rollout is 8 envs x 32 steps = 256 env steps
    assert [s.budget for s in raised.stages] == [512] * 4 and raised.curriculum.chunk_steps == 512
    direct = arm_config("direct", "tiny", 0, 600)  # whole rollouts: 512 per stage, x the raised arm's 4 stages
    assert [s.budget for s in direct.stages] == [2048]
    cai = arm_config("raised_cai", "tiny", 0, 1536)  # the stories stage's 1024 of 6144 steps, scaled to 1536
    assert cai.stages[-1].budget == 1536 and cai.stages[-1].critique.steps == 256
    assert arm_config("raised", "tiny", 0).stages[0].budget == 12288  # no budget: the config as written
    with pytest.raises(SystemExit, match="less than one PPO rollout"):
        arm_config("raised", "tiny", 0, 100)


def test_an_evaluation_is_reused_when_its_moralchoice_csv_is_the_same_file_through_a_link(tmp_path):
    from benchmarks.development import _same_settings

    csv = tmp_path / "dev.csv"
    csv.write_text("x")
    (tmp_path / "link").symlink_to(tmp_path)
    settings = {"episodes": 8, "moralchoice": str(csv), "ink": True}
    assert _same_settings({**settings, "moralchoice": str(tmp_path / "link" / "dev.csv")}, settings)
    assert not _same_settings({**settings, "episodes": 20}, settings)
    assert not _same_settings({**settings, "moralchoice": None}, settings)


def test_error_bars_span_each_interval_and_nothing_without_one():
    from benchmarks._development_table import error_bars

    means, err = error_bars(
        [{"mean": 0.55, "low": 0.42, "high": 0.69}, {"mean": 0.48, "low": None, "high": None}, None]
    )
    assert means[:2].tolist() == [0.55, 0.48] and means[2] != means[2]  # NaN: no figure
    assert err[:, 0] == pytest.approx([0.13, 0.14])  # down to 0.42, up to 0.69
    assert err[:, 1].tolist() == [0.0, 0.0] and err[:, 2].tolist() == [0.0, 0.0]
