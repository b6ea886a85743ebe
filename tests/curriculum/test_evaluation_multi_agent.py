"""The evaluation suites of a multi-agent stage: unseen opponents in place of its population, on a real short run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from upbringing.curriculum import evaluation
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.config import PopulationConfig
from upbringing.curriculum.evaluation import evaluate_run
from upbringing.curriculum.factory import eval_seeds
from upbringing.curriculum.launch import load_run, train
from upbringing.curriculum.seating import against, evaluate_population
from upbringing.curriculum.suites import suite_variants

CONFIG = """\
name: pd_population
seed: 2
agent: {kind: sb3_ppo, n_steps: 32, batch_size: 32, n_epochs: 2}
curriculum: {chunk_steps: 128, n_envs: 4}
tracking: {wandb: 'off', sample_episodes: 0}
stages:
  - name: pd
    env: social/IteratedPD-v0
    levels: [{n_players: 2, horizon: 10}]
    population:
      focal_seats: [0]
      background: [{player: tit_for_tat, weight: 2}, {player: always_defect, weight: 1}]
      snapshots: 1.0
      crossplay_opponents: [tit_for_tat]
      crossplay_episodes: 2
    promotion: {metric: return, threshold: -100.0, window: 4, min_episodes: 4}
    budget: 128
    eval_episodes: 5
"""

UNSEEN = ["always_cooperate", "generous_tit_for_tat", "grim_trigger", "random"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("population_eval")
    path = root / "pd.yaml"
    path.write_text(CONFIG)
    run_dir, _ = train(load_config(path), root / "run", progress=False)
    assert (run_dir / "snapshots").exists()  # the promotion froze a past self, which joins the background
    return run_dir


@pytest.fixture(scope="module")
def played(run_dir):
    """``evaluate_run`` with the opponents suite, recording the env factory of every variant it played."""
    factories = []
    real = evaluation.evaluate

    def recording(agent, factory, seeds, metric, *args, **kwargs):
        factories.append(factory)
        return real(agent, factory, seeds, metric, *args, **kwargs)

    evaluation.evaluate = recording
    try:
        result = evaluate_run(load_run(run_dir), ["opponents"], axelrod=False)
    finally:
        evaluation.evaluate = real
    return result, factories


def test_opponents_suite_plays_each_unseen_player_once_per_seed(run_dir, played):
    result, _ = played
    entry = result["stages"]["pd"]
    assert set(entry["suites"]) == {"in_distribution", "opponents"}
    variants = entry["suites"]["opponents"]["variants"]
    # the population's tit_for_tat and always_defect are seen; every other built-in that plays a 2x2 game is not
    assert [v["label"] for v in variants] == UNSEEN == [v["opponent"] for v in variants]
    assert entry["suites"]["opponents"]["episodes"] == len(UNSEEN) * 5

    run = load_run(run_dir)
    seeds = eval_seeds(run.config.seed + 2_000_029, 0, 0, 5)
    factory = run.factory(0, 0)
    for v in variants:
        assert v["episodes"] == 5  # one focal seat per game
        # the cell is what the learner scores against that player alone, replayed
        replay = evaluate_population(run.agent, against(factory, v["label"], 2), seeds, "return")
        assert v["return"] == pytest.approx(float(np.mean(replay.returns)))
        mine = v["events"]["cooperated"] / 10  # the focal seat's cooperation per round (horizon 10)
        theirs = {"always_cooperate": 1.0}.get(v["label"])
        if theirs is not None:  # the table's cooperation is the mean of both seats'
            assert v["social"]["cooperation_rate"] == pytest.approx((mine + theirs) / 2)
    cooperate = variants[0]
    # raw points against a pure cooperator: R=3 per round cooperating, T=5 defecting, so 3..5 a round for the learner
    assert 10 * 3 / 5 - 1e-9 <= cooperate["return"] <= 10 * 5 / 5 + 1e-9


def test_each_variant_is_the_stage_factory_with_only_its_change(run_dir, played):
    _, factories = played
    run = load_run(run_dir)
    base = run.factory(0, 0)
    assert base.background  # the frozen snapshot is part of the trained population
    reference, *opponents = factories
    changed = {"split"}
    for f in factories:
        assert f.split == "train" and f.multi_agent
    for field in dataclasses.fields(base):
        if field.name not in changed | {"shapers", "background"}:
            assert getattr(reference, field.name) == getattr(base, field.name), field.name
    assert len(reference.shapers) == len(base.shapers)
    assert [p.name for p in reference.background] == [p.name for p in base.background]  # the snapshot plays on
    for name, f in zip(UNSEEN, opponents):
        # the unseen player replaces the population and its snapshots; nothing else changes
        assert f.opponent == name and f.background == ()
        assert f.stage.population.focal_seats == [0]
        for field in dataclasses.fields(base):
            if field.name not in {"split", "opponent", "background", "stage", "shapers"}:
                assert getattr(f, field.name) == getattr(base, field.name), field.name


def test_multi_agent_opponent_variants_leave_out_seen_and_unfit_players():
    # self-play (no background): every built-in that can play a 2x2 game
    assert [v.label for v in suite_variants("opponents", "social/StagHunt-v0", {}, axelrod=False)] == [
        "always_cooperate",
        "always_defect",
        "tit_for_tat",
        "generous_tit_for_tat",
        "grim_trigger",
        "random",
    ]
    population = PopulationConfig.model_validate(
        {"focal_seats": [0, 1], "background": [{"player": {"name": "fixed_contributor", "fraction": 0.5}}]}
    )
    variants = suite_variants(
        "opponents", "social/PublicGoods-v0", {"n_players": 4}, axelrod=False, population=population
    )
    assert [v.opponent for v in variants] == ["always_cooperate", "always_defect", "random"]
    assert all(not v.overrides for v in variants)
