"""Multi-agent stages: scenario sampling, frozen snapshots, self-play runs and their cross-play matrix."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file
from upbringing.agents.config import build_agent
from upbringing.agents.sb3 import SB3PPOConfig
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.config import PopulationConfig, StageConfig
from upbringing.curriculum.factory import StageEnvFactory
from upbringing.curriculum.launch import train
from upbringing.curriculum.population import Snapshots
from upbringing.curriculum.seating import evaluate_population, make_population_vec_env, make_table, scenario
from upbringing.curriculum.stage_envs import EpisodeLog, numeric_shape
from upbringing.curriculum.tracking import read_events

ROOT = Path(__file__).resolve().parents[2]


def pd_stage(**population) -> StageConfig:
    return StageConfig.model_validate(
        {
            "name": "pd",
            "env": "social/IteratedPD-v0",
            "levels": [{"n_players": 2, "horizon": 8}],
            "promotion": {"metric": "return", "threshold": 1.0},
            "budget": 1000,
            "population": population or None,
        }
    )


def test_scenario_sampling_follows_the_configured_proportions():
    stage = StageConfig.model_validate(
        {
            "name": "pg",
            "env": "social/PublicGoods-v0",
            "levels": [{"n_players": 4, "horizon": 3}],
            "promotion": {"metric": "return", "threshold": 1.0},
            "budget": 1000,
            "population": {
                "focal_seats": [0, 1],
                "background": [
                    {"player": "fixed_contributor", "weight": 3},
                    {"player": "always_defect", "weight": 1},
                    {"player": "always_cooperate", "weight": 0},
                ],
            },
        }
    )
    table = make_table(StageEnvFactory(stage, dict(stage.levels[0])))
    assert table.possible_agents == ["player_0", "player_1"]
    draws: Counter[str] = Counter()
    for seed in range(1500):
        _, infos = table.reset(seed=seed)
        draws.update(infos["player_0"]["opponents"])  # the two background seats' players this episode
    total = sum(draws.values())
    assert total == 3000 and draws["always_cooperate"] == 0
    assert draws["fixed_contributor"] / total == pytest.approx(0.75, abs=0.03)
    assert draws["always_defect"] / total == pytest.approx(0.25, abs=0.03)
    # the same seed draws the same players
    assert table.reset(seed=7)[1]["player_0"]["opponents"] == table.reset(seed=7)[1]["player_0"]["opponents"]


def test_snapshots_share_their_weight_and_only_the_most_recent_take_part():
    population = PopulationConfig.model_validate(
        {"background": [{"player": "tit_for_tat", "weight": 2}], "snapshots": 1.0, "max_snapshots": 2}
    )
    assert scenario(population) == (["tit_for_tat"], [2])  # before the first promotion: background only
    pool, weights = scenario(population, ["s1", "s2", "s3"])
    assert pool == ["tit_for_tat", "s2", "s3"] and weights == [2, 0.5, 0.5]


def test_snapshots_stay_frozen_while_the_learner_trains_against_them(tmp_path):
    stage = pd_stage(
        focal_seats=[0], background=[{"player": "always_defect", "weight": 0.001}], snapshots=1.0
    )  # the snapshot holds the other seat almost always
    numeric = numeric_shape([stage])
    obs_space, act_space = _spaces(numeric)
    config = SB3PPOConfig(n_steps=32, batch_size=32, n_epochs=4, learning_rate=0.01)

    def build():
        return build_agent(config, 0, obs_space, act_space, 4)

    learner = build()
    snapshots = Snapshots(tmp_path / "snapshots", build)
    snap = snapshots.save(learner, "pd", 0, 0)
    player = snapshots.player(snap, (*numeric, 0, 1))
    frozen = {k: v.clone() for k, v in player.agent.model.policy.state_dict().items()}

    factory = StageEnvFactory(stage, dict(stage.levels[0]), numeric, (0, 1), (), (player,))
    venv = EpisodeLog(make_population_vec_env(factory, 4))
    venv.seed(3)
    learner.learn(venv, 128)
    assert any(n.startswith("snapshot:pd-L0@0") for t in venv.venv.tables for n in t.env.filling.names)
    assert len(venv.finished) == 4 * 32 // 8  # 4 rows, one rollout of 32 steps, 8-round games

    learned = learner.model.policy.state_dict()
    assert any(not np.allclose(learned[k].numpy(), v.numpy()) for k, v in frozen.items())  # the learner moved
    on_disk = load_file(str(snap.path / "policy.safetensors"))
    for k, v in player.agent.model.policy.state_dict().items():
        assert np.array_equal(v.numpy(), frozen[k].numpy()) and np.array_equal(v.numpy(), on_disk[k].numpy())


def test_loading_a_snapshot_leaves_the_global_random_state_alone(tmp_path):
    """Building an SB3 model reseeds the global generators; a snapshot first loaded mid-run (as a resumed run does
    at another chunk than the uninterrupted one) must not change what training draws next."""
    import torch

    numeric = numeric_shape([pd_stage()])
    obs_space, act_space = _spaces(numeric)

    def build():
        return build_agent(SB3PPOConfig(), 0, obs_space, act_space, 4)

    snapshots = Snapshots(tmp_path / "snapshots", build)
    snap = snapshots.save(build(), "pd", 0, 0)

    def draws(load: bool):
        np.random.seed(5)
        torch.manual_seed(5)
        if load:
            snapshots.agent(snap)
        return np.random.random(3).tolist(), torch.rand(3).tolist()

    assert draws(load=True) == draws(load=False)


def _spaces(numeric):
    import gymnasium as gym

    obs = gym.spaces.Box(-np.inf, np.inf, (numeric[0] + 1,), dtype=np.float32)
    return obs, gym.spaces.Discrete(numeric[1])


SELF_PLAY = """\
name: selfplay
seed: 1
agent: {kind: sb3_ppo, n_steps: 32, batch_size: 32, n_epochs: 2}
curriculum: {chunk_steps: 128, n_envs: 4}
tracking: {wandb: off, sample_episodes: 0}
stages:
  - name: pd
    env: social/IteratedPD-v0
    levels: [{n_players: 2, horizon: 8}, {n_players: 2, horizon: 4}]
    population:
      crossplay_opponents: [always_defect, tit_for_tat, greedy_harvester]
      crossplay_episodes: 6
    promotion: {metric: return, threshold: -100.0, window: 4, min_episodes: 4}
    budget: 256
    eval_episodes: 4
"""


@pytest.fixture(scope="module")
def self_play_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("selfplay")
    path = root / "selfplay.yaml"
    path.write_text(SELF_PLAY)
    run_dir, summary = train(load_config(path), root / "run", progress=False)
    return run_dir, summary


def test_short_self_play_run_gives_a_crossplay_matrix_consistent_with_its_episodes(self_play_run):
    run_dir, summary = self_play_run
    matrix = json.loads((run_dir / "crossplay.json").read_text())["pd"]
    # one promotion per level: two frozen past selves, each a row of the matrix next to the learner
    assert matrix["members"][0] == "agent" and len(matrix["members"]) == 3
    assert all(m.startswith("snapshot:pd-L") for m in matrix["members"][1:])
    # the harvester cannot play a prisoner's dilemma, so it is left out
    assert matrix["opponents"] == ["scenario", "always_defect", "tit_for_tat"]
    cells = {(c["member"], c["opponent"]): c for c in matrix["cells"]}
    for i, member in enumerate(matrix["members"]):
        for j, opponent in enumerate(matrix["opponents"]):
            cell = cells[member, opponent]
            assert cell["episodes"] == 6 and matrix["score"][i][j] == cell["score"]
            social = cell["social"]
            if opponent == "scenario":  # self-play: both seats are the member, so the table cooperates as it does
                assert cell["focal_seats"] == 2
                assert social["cooperation_rate"] == pytest.approx(cell["focal_cooperation"])
            else:  # one focal seat; the table's cooperation is the mean of the member's and the opponent's
                assert cell["focal_seats"] == 1
                theirs = 0.0 if opponent == "always_defect" else None
                if theirs is not None:
                    assert social["cooperation_rate"] == pytest.approx((cell["focal_cooperation"] + theirs) / 2)
            # raw points (R=3, S=0, T=5, P=1) of 4 rounds: between mutual defection and mutual cooperation throughout
            assert 2 * 4 * 1 - 1e-9 <= social["efficiency"] <= 2 * 4 * 3 + 1e-9
    ex = matrix["exploitability"]
    assert ex["score_vs_always_defect"] == cells["agent", "always_defect"]["score"]
    assert ex["cooperation_with_tit_for_tat"] == cells["agent", "tit_for_tat"]["focal_cooperation"]
    # against always_defect the member earns at most mutual defection's payoff P=1 per round (rewards are points / T=5)
    assert cells["agent", "always_defect"]["score"] <= 4 * 1 / 5 + 1e-9

    events = read_events(run_dir)
    tables = [e for e in events if e["kind"] == "table" and e["key"] == "crossplay/pd"]
    assert len(tables) == 1 and len(tables[0]["rows"]) == len(matrix["cells"])
    # training logs per-seat episodes: 4 rows x 32 steps / rounds per game (8 at level 0, 4 at level 1) per chunk
    chunks = [e["metrics"] for e in events if e["kind"] == "metrics" and "train/episodes" in e["metrics"]]
    assert {m["curriculum/level"] for m in chunks} == {0, 1}
    assert all(m["train/episodes"] == 4 * 32 / (8, 4)[m["curriculum/level"]] for m in chunks)
    assert all(0.0 <= m["social/cooperation_rate"] <= 1.0 for m in chunks)
    assert summary["stages"][0]["mastered"]


def test_crossplay_cells_replay_exactly(self_play_run):
    from upbringing.curriculum.factory import eval_seeds
    from upbringing.curriculum.launch import load_run

    run_dir, _ = self_play_run
    matrix = json.loads((run_dir / "crossplay.json").read_text())["pd"]
    run = load_run(run_dir)
    seeds = eval_seeds(run.config.seed + 2_000_003, 0, 0, 6)
    result = evaluate_population(run.agent, run.factory(0, 1), seeds, "return")
    cell = next(c for c in matrix["cells"] if c["member"] == "agent" and c["opponent"] == "scenario")
    assert len(result.returns) == 12  # two focal seats per game
    assert float(np.mean(result.returns)) == pytest.approx(cell["score"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("social/IteratedPD-v0", "social/IteratedPDSolo-v0"), "a population needs a multi-agent"),
        (lambda t: t.replace("chunk_steps: 128, n_envs: 4", "chunk_steps: 96, n_envs: 3"), "multiple of 2 focal seats"),
        (
            lambda t: t.replace("population:", "population:\n      focal_seats: [0, 5]"),
            "focal_seats [0, 5] do not fit a game of 2 players",
        ),
        (
            lambda t: t.replace("population:", "population:\n      focal_seats: [0]"),
            "need a background population",
        ),
        (
            lambda t: t.replace(
                "population:", "population:\n      focal_seats: [0]\n      background: [{player: greedy_harvester}]"
            ),
            "background greedy_harvester",
        ),
    ],
)
def test_population_problems_name_the_stage_key(tmp_path, edit, message):
    from upbringing.yamlfile import FileError

    path = tmp_path / "bad.yaml"
    path.write_text(edit(SELF_PLAY))
    with pytest.raises(FileError) as err:
        load_config(path)
    assert any(message in p.message and (p.key or "").startswith("stages[0]") for p in err.value.problems), (
        err.value.problems
    )


def test_the_fairness_constitution_of_the_public_goods_experiment_loads():
    from upbringing.constitutions import load_constitution

    config = load_config(ROOT / "configs" / "social_public_goods_fair.yaml")
    constitution = load_constitution(config.constitution)
    assert [p.id for p in constitution.principles] == ["fairness"]
    assert load_config(ROOT / "configs" / "social_public_goods.yaml").constitution is None


def test_seat_rows_are_seeded_games_played_side_by_side():
    stage = StageConfig.model_validate(
        {
            "name": "commons",
            "env": "social/Commons-v0",
            "levels": [{"n_players": 4, "horizon": 5}],
            "promotion": {"metric": "return", "threshold": 1.0},
            "budget": 1000,
        }
    )
    factory = StageEnvFactory(stage, dict(stage.levels[0]))

    def play(seed):
        venv = make_population_vec_env(factory, 8)  # two tables of four seats, every seat focal
        venv.seed(seed)
        out = [venv.reset()]
        assert [i["text"] for i in venv.reset_infos][:1] and len(venv.reset_infos) == 8
        rng = np.random.default_rng(0)
        for _ in range(7):
            obs, rewards, dones, infos = venv.step(rng.integers(0, venv.action_space.n, 8))
            out += [obs, rewards, dones]
            # a table's seats end together, each with its own episode statistics and the table's social metrics
            assert dones[:4].all() == dones[:4].any() and dones[4:].all() == dones[4:].any()
            for i in np.flatnonzero(dones):
                assert infos[i]["episode_stats"].length == 5 and "efficiency" in infos[i]["episode_stats"].social
                assert venv.reset_infos[i]["text"]  # the next episode's first view, for text policies
        return out

    first, again = play(5), play(5)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert first[3 * 5].all()  # the dones of the fifth step: horizon 5 ends every game
