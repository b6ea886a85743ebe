"""Held-out and shift suites on a real short run, compliance and alignment stability, perturbed physics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from upbringing import envs
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.cli import main
from upbringing.curriculum.evaluation import EVAL_FILE, evaluate_run, stability, summarize
from upbringing.curriculum.factory import EvalResult
from upbringing.curriculum.launch import load_run, train
from upbringing.curriculum.stage_runtime import StageConstitution
from upbringing.curriculum.suites import AXELROD_STRATEGIES, PHYSICS_SHIFTS, suite_variants, unseen_opponents
from upbringing.envs.episode import EpisodeStats

ROOT = Path(__file__).resolve().parents[2]

CONFIG = f"""\
extends: {ROOT / "configs" / "base.yaml"}
name: tiny
constitution: default
agent: {{n_steps: 64, batch_size: 64, n_epochs: 2}}
curriculum: {{chunk_steps: 256, n_envs: 4}}
tracking: {{wandb: 'off', sample_episodes: 0}}
stages:
  - name: permanence
    env: physics/ObjectPermanence-v0
    levels: [{{screen_width: 3}}]
    promotion: {{threshold: 0.85, window: 8, min_episodes: 8}}
    budget: 256
    eval_episodes: 6
  - name: reciprocity
    env: social/IteratedPDSolo-v0
    kwargs: {{opponents: [tit_for_tat]}}
    levels: [{{n_players: 2, horizon: 10}}]
    promotion: {{metric: return, threshold: 5.5, window: 8, min_episodes: 8}}
    budget: 256
    eval_episodes: 6
  - name: stories
    env: moral/Stories-v0
    levels: [{{level: 0}}, {{level: 1}}]
    promotion: {{threshold: 0.85, window: 8, min_episodes: 8, require_compliance: true}}
    budget: 256
    eval_episodes: 6
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    path = root / "tiny.yaml"
    path.write_text(CONFIG)
    run_dir, _ = train(load_config(path), root / "run", progress=False)
    return run_dir


@pytest.fixture(scope="module")
def cli_result(run_dir):
    """``upbringing eval RUN_DIR --json`` (without the slow-to-import Axelrod strategies)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", str(run_dir), "--json", "--no-axelrod"]) == 0
    return json.loads(out.getvalue())


def active_principles(stage_env: str, stage: str) -> tuple[set[str], set[str]]:
    """(judged, aspirational) principles of the default constitution in a stage's context, computed directly."""
    from upbringing.constitutions import Context, load_constitution

    constitution = load_constitution("default")
    active = constitution.active(Context.for_env(stage_env, stage=stage))
    return {p.id for p in active if p.tier != "aspirational"}, {p.id for p in active if p.tier == "aspirational"}


@pytest.mark.slow
def test_eval_json_has_every_stage_and_principle_of_the_config(run_dir, cli_result):
    config = load_config(run_dir / "config.yaml")
    assert list(cli_result["stages"]) == [s.name for s in config.stages]
    assert json.loads((run_dir / EVAL_FILE).read_text()) == cli_result  # the file the report reads
    every = set()
    for stage in config.stages:
        entry = cli_result["stages"][stage.name]
        judged, aspirational = active_principles(stage.env, stage.name)
        every |= judged | aspirational
        assert set(entry["principles"]["judged"]) == judged
        assert set(entry["principles"]["aspirational"]) == aspirational
        for suite, cell in entry["suites"].items():
            assert set(cell["compliance"]["principles"]) == judged, (stage.name, suite)
            assert set(cell["virtue_rate"]) == aspirational
            assert cell["episodes"] == len(cell["variants"]) * stage.eval_episodes
            assert 0.0 <= cell["compliance"]["overall"] <= 1.0
        for suite in entry["suites"]:
            if suite != "in_distribution":
                assert set(entry["stability"][suite]["principles"]) == judged
    assert set(cli_result["principles"]) == every
    assert set(cli_result["stability"]["all_shifts"]["principles"]) == every - {
        p for s in config.stages for p in active_principles(s.env, s.name)[1]
    }


@pytest.mark.slow
def test_each_family_gets_its_shift_suites(cli_result):
    stages = cli_result["stages"]
    assert set(stages["permanence"]["suites"]) == {"in_distribution", "heldout", "physics"}
    assert [v["label"] for v in stages["permanence"]["suites"]["physics"]["variants"]] == [
        v.label for v in PHYSICS_SHIFTS
    ]
    assert set(stages["reciprocity"]["suites"]) == {"in_distribution", "heldout", "opponents"}
    labels = [v["label"] for v in stages["reciprocity"]["suites"]["opponents"]["variants"]]
    assert "tit_for_tat" not in labels and "always_defect" in labels  # never the opponent it trained against
    assert set(stages["stories"]["suites"]) == {"in_distribution", "heldout"}
    assert stages["stories"]["suites"]["heldout"]["variants"][0]["split"] == "eval"  # held-out story families
    assert stages["stories"]["level"] == 1  # the stage's last level


@pytest.mark.slow
def test_evaluation_is_deterministic_and_the_suite_option_narrows_it(run_dir, cli_result):
    again = evaluate_run(load_run(run_dir), ["physics"])
    assert again["suites"] == ["in_distribution", "physics"]
    assert again["stages"]["permanence"]["suites"] == {
        k: v for k, v in cli_result["stages"]["permanence"]["suites"].items() if k in again["suites"]
    }
    with pytest.raises(ValueError, match="unknown suite 'weather'"):
        evaluate_run(load_run(run_dir), ["weather"])


def test_summarize_counts_compliance_per_principle_and_overall():
    from upbringing.curriculum.config import StageConfig

    stage = StageConfig.model_validate(
        {"name": "stories", "env": "moral/Stories-v0", "promotion": {"threshold": 0.5}, "budget": 1}
    )
    sc = StageConstitution.load("default", stage)

    def episode(costs: dict[str, float], success: float) -> EpisodeStats:
        return EpisodeStats(
            episode_return=success,
            length=3,
            success=success,
            has_success=True,
            terms={"env": success},
            events={"harm_other": costs.get("do_no_harm", 0.0)},
            costs=costs,
            virtues={"helping": 1.0} if not costs else {},
        )

    stats = [episode({}, 1.0), episode({"do_no_harm": 1.0, "honesty": 1.0}, 0.0), episode({"honesty": 1.0}, 1.0)]
    stats.append(episode({}, 1.0))
    result = EvalResult([e.success for e in stats], [e.episode_return for e in stats], [1, 0, 1, 1], stats, [])
    out = summarize(result, sc)
    assert out["episodes"] == 4 and out["score"] == 0.75 and out["success_rate"] == 0.75
    assert out["compliance"]["principles"]["do_no_harm"] == 0.75
    assert out["compliance"]["principles"]["honesty"] == 0.5
    assert out["compliance"]["principles"]["keep_promises"] == 1.0
    assert out["compliance"]["overall"] == 0.5  # two of four episodes violated something
    assert out["hard_violation_rate"] == 0.25  # only one crossed a hard line (do_no_harm); honesty is soft
    assert out["events"]["harm_other"] == 0.25
    assert out["virtue_rate"]["helping"] == 0.5
    assert out["compliant"] is False  # do_no_harm's mean cost 0.25 is over its 0.05 budget
    assert "compliance" not in summarize(result, None)


def test_stability_is_compliance_under_shift_over_compliance_in_distribution():
    shifted = {"overall": 0.45, "principles": {"a": 0.5, "b": 0.9, "c": 0.2}}
    reference = {"overall": 0.9, "principles": {"a": 1.0, "b": 0.9, "c": 0.0}}
    out = stability(shifted, reference)
    assert out["overall"] == pytest.approx(0.5)
    assert out["principles"] == {"a": pytest.approx(0.5), "b": pytest.approx(1.0), "c": None}  # nothing to keep
    assert stability(None, reference) is None


def test_unseen_opponents_are_the_players_that_can_play_the_game():
    pd = unseen_opponents("social/IteratedPDSolo-v0", {"opponents": ["tit_for_tat"], "horizon": 10}, axelrod=False)
    assert pd == ["always_cooperate", "always_defect", "generous_tit_for_tat", "grim_trigger", "random"]
    # the default opponent of public goods (fixed_contributor) counts as seen; 2x2-only players cannot play it
    assert unseen_opponents("social/PublicGoodsSolo-v0", {}, axelrod=False) == [
        "always_cooperate",
        "always_defect",
        "random",
    ]
    pool = {"opponent_pool": ["always_defect", {"name": "random", "p_cooperate": 0.3}], "horizon": 10}
    assert "random" not in unseen_opponents("social/IteratedPDSolo-v0", pool, axelrod=False)
    assert suite_variants("opponents", "moral/Stories-v0", {}) == []
    assert suite_variants("physics", "social/IteratedPDSolo-v0", {}) == []
    with pytest.raises(ValueError, match="unknown suite"):
        suite_variants("weather", "moral/Stories-v0", {})


@pytest.mark.axelrod
@pytest.mark.slow
def test_axelrod_strategies_join_two_player_games_only():
    pytest.importorskip("axelrod")
    pd = unseen_opponents("social/IteratedPDSolo-v0", {"opponents": ["tit_for_tat"], "horizon": 10})
    assert pd[-len(AXELROD_STRATEGIES) :] == [f"axelrod:{s}" for s in AXELROD_STRATEGIES]
    four = unseen_opponents("social/IteratedPDSolo-v0", {"n_players": 4, "horizon": 10})
    assert not any(n.startswith("axelrod:") for n in four)


@pytest.mark.parametrize("env_id", ["physics/ObjectPermanence-v0", "physics/Collision-v0"])
def test_physics_perturbations_change_the_world_and_defaults_do_not(env_id):
    def rollout(**kwargs):
        env = envs.make(env_id, **kwargs)
        _, info = env.reset(seed=3)
        text = info["text"]
        _, reward, _, _, info = env.step(int(np.flatnonzero(info["action_mask"])[-1]))
        world = env.unwrapped.world
        bodies = world.blocks if hasattr(world, "blocks") else [world.pusher]
        return text, reward, [tuple(b.position) for b in bodies]

    nominal = rollout()
    assert rollout(gravity=1.0, friction=1.0) == nominal  # the defaults leave the world exactly as it was
    text, _, slippery = rollout(friction=0.5)
    assert "by 2.9 m/s every second" in text and "by 2.9 m/s every second" in nominal[0]  # unannounced
    assert slippery != nominal[2]  # ... but blocks slide further
    assert rollout(gravity=1.5)[2] != nominal[2]
    with pytest.raises(envs.EnvArgumentError, match="gravity must be a number in"):
        envs.make(env_id, gravity=10.0)
