"""Independent learners: each focal seat its own agent, learning only from its seat, saved, resumed, cross-played."""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path
from typing import SupportsFloat, cast

import gymnasium as gym
import numpy as np
import pytest
from helpers.events import comparable
from safetensors.torch import load_file
from upbringing.agents.config import build_agent
from upbringing.agents.sb3 import SB3PPOConfig
from upbringing.agents.team import Team
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.config import StageConfig
from upbringing.curriculum.factory import StageEnvFactory
from upbringing.curriculum.launch import load_run, resume, train
from upbringing.curriculum.seating import learner_seed, make_population_vec_env
from upbringing.curriculum.stage_envs import EpisodeLog, numeric_shape
from upbringing.curriculum.tracking import read_events
from upbringing.envs.social.vec import SeatView

INDEPENDENT = """\
name: independent
seed: 1
agent: {kind: sb3_ppo, n_steps: 32, batch_size: 32, n_epochs: 2, learning_rate: 0.003}
curriculum: {chunk_steps: 128, n_envs: 4}
tracking: {wandb: 'off', sample_episodes: 0}
stages:
  - name: pd
    env: social/IteratedPD-v0
    levels: [{n_players: 2, horizon: 8}, {n_players: 2, horizon: 4}]
    population:
      independent: true
      crossplay_opponents: [always_defect, tit_for_tat]
      crossplay_episodes: 6
    promotion: {metric: return, threshold: -100.0, window: 4, min_episodes: 4}
    budget: 256
    eval_episodes: 4
"""


@pytest.fixture(scope="module")
def independent_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("independent")
    path = root / "independent.yaml"
    path.write_text(INDEPENDENT)
    run_dir, summary = train(load_config(path), root / "run", progress=False)
    return run_dir, summary


def _weights(agent) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in agent.model.policy.state_dict().items()}


def _differ(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return any(not np.array_equal(a[k], b[k]) for k in a)


def test_each_seat_is_its_own_learner_with_its_own_weights_and_crossplay_row(independent_run):
    run_dir, summary = independent_run
    run = load_run(run_dir)
    team = run.stage_agent(0)
    assert isinstance(team, Team) and list(team.members) == ["player_0", "player_1"]
    first, second = team.members.values()
    assert first is run.agent  # the run's agent holds the first seat
    shared = {id(p) for p in first.model.policy.parameters()} & {id(p) for p in second.model.policy.parameters()}
    assert not shared and first.model.policy.optimizer is not second.model.policy.optimizer
    # both learned (4 updates of 2 epochs each: 2 chunks of one 32-step rollout), from different initial weights
    assert first.model._n_updates == second.model._n_updates == 4
    obs, act = run.agent.model.observation_space, run.agent.model.action_space
    config = run.config.agent
    init_first = _weights(build_agent(config, run.config.seed, obs, act, 4))
    init_second = _weights(build_agent(config, learner_seed(run.config.seed, 0, 1), obs, act, 4))
    assert _differ(init_first, init_second)
    assert _differ(_weights(first), init_first) and _differ(_weights(second), init_second)
    assert _differ(_weights(first), _weights(second))

    # per-seat training metrics; snapshots of both learners at both promotions, frozen as saved
    chunks = [e["metrics"] for e in read_events(run_dir, "metrics") if "train/episodes" in e["metrics"]]
    assert len(chunks) == 2
    for m in chunks:
        for seat in ("player_0", "player_1"):
            assert m[f"train/{seat}/n_updates"] > 0 and 0.0 <= m[f"train/{seat}/cooperation"] <= 1.0
    names = sorted(p.name for p in (run_dir / "snapshots").iterdir())
    assert names == [
        "000000000128-pd-L0",
        "000000000128-pd-L0.player_1",
        "000000000256-pd-L1",
        "000000000256-pd-L1.player_1",
    ]
    early = load_file(str(run_dir / "snapshots" / "000000000128-pd-L0.player_1" / "policy.safetensors"))
    assert _differ({k: v.numpy() for k, v in early.items()}, _weights(second))  # saved before the last chunk

    matrix = json.loads((run_dir / "crossplay.json").read_text())["pd"]
    assert matrix["members"] == [
        "agent",
        "learner:player_1",
        "snapshot:pd-L0@128",
        "snapshot:pd-L0@128:player_1",
        "snapshot:pd-L1@256",
        "snapshot:pd-L1@256:player_1",
    ]
    assert matrix["opponents"] == ["scenario", "agent", "learner:player_1", "always_defect", "tit_for_tat"]
    assert len(matrix["score"]) == len(matrix["members"]) and all(len(r) == 5 for r in matrix["score"])
    cells = {(c["member"], c["opponent"]): c for c in matrix["cells"]}
    # the learners' own pairing, seen from seat 0, and the team in its training seats: the same games
    pairing, team_cell = cells["agent", "learner:player_1"], matrix["team"]
    assert pairing["focal_seats"] == 1 and team_cell["focal_seats"] == 2 and team_cell["episodes"] == 6
    assert pairing["social"] == pytest.approx(team_cell["social"])
    # the last snapshots are the learners as they ended: the same rows
    assert matrix["score"][4] == matrix["score"][0] and matrix["score"][5] == matrix["score"][1]
    tables = [e for e in read_events(run_dir, "table") if e["key"] == "crossplay/pd"]
    assert len(tables[0]["rows"]) == len(matrix["cells"]) + 1  # and the team's cell
    assert summary["stages"][0]["mastered"]


def test_an_independent_run_resumes_exactly(independent_run, tmp_path):
    run_dir, _ = independent_run
    copy = tmp_path / "resumed"
    shutil.copytree(run_dir, copy)
    for name in ("summary.json", "crossplay.json", "retention.json"):
        (copy / name).unlink()
    shutil.rmtree(copy / "checkpoints" / "chunk-000002")  # back to the end of the first chunk
    (copy / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": "chunk-000001"}))
    assert (copy / "checkpoints" / "chunk-000001" / "learners" / "pd" / "player_1" / "policy.safetensors").exists()
    resume(copy, progress=False)
    for name in ("summary.json", "crossplay.json", "retention.json"):
        assert json.loads((copy / name).read_text()) == json.loads((run_dir / name).read_text()), name
    assert comparable(copy) == comparable(run_dir)
    for sub in ("agent", "learners/pd/player_1"):
        for file in ("policy.safetensors", "optimizer.safetensors"):
            a = load_file(str(run_dir / "checkpoints" / "chunk-000002" / sub / file))
            b = load_file(str(copy / "checkpoints" / "chunk-000002" / sub / file))
            assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a), (sub, file)


class _SeatReward(gym.RewardWrapper):
    """Scales the reward of one seat's rows (the rows of other seats pass unchanged)."""

    def __init__(self, env: gym.Env, seat: str, scale: float):
        super().__init__(env)
        self.scale = scale if cast(SeatView, env.unwrapped).seat == seat else 1.0

    def reward(self, reward: SupportsFloat) -> float:
        return self.scale * float(reward)


@pytest.mark.parametrize("changed", ["player_0", "player_1"])
def test_each_learner_learns_only_from_its_own_seat(changed):
    """One rollout and update of a two-learner team, then the same with one seat's rewards negated: the other
    learner's update is bit for bit the same (and the same seed gives the same run)."""
    stage = StageConfig.model_validate(
        {
            "name": "pd",
            "env": "social/StagHunt-v0",
            "levels": [{"n_players": 2, "horizon": 8}],
            "promotion": {"metric": "return", "threshold": 1.0},
            "budget": 1000,
            "population": {"independent": True},
        }
    )
    numeric = numeric_shape([stage])
    obs = gym.spaces.Box(-np.inf, np.inf, (numeric[0] + 1,), dtype=np.float32)
    config = SB3PPOConfig(n_steps=16, batch_size=32, n_epochs=2, learning_rate=0.01)

    def learn(scale: float) -> dict[str, dict[str, np.ndarray]]:
        team = Team(
            {
                s: build_agent(config, 7 + k, obs, gym.spaces.Discrete(numeric[1]), 4)
                for k, s in enumerate(["player_0", "player_1"])
            }
        )
        shaper = partial(_SeatReward, seat=changed, scale=scale)
        factory = StageEnvFactory(stage, dict(stage.levels[0]), numeric, (0, 1), (shaper,))
        venv = EpisodeLog(make_population_vec_env(factory, 4))
        venv.seed(11)
        np.random.seed(0)
        import torch

        torch.manual_seed(0)
        metrics = team.learn(venv, 64)
        assert metrics["train/player_0/n_updates"] == metrics["train/player_1/n_updates"] == 2
        return {s: _weights(a) for s, a in team.members.items()}

    base, again, negated = learn(1.0), learn(1.0), learn(-1.0)
    for seat in base:
        assert not _differ(base[seat], again[seat])  # same seed, same run
    other = "player_1" if changed == "player_0" else "player_0"
    assert not _differ(base[other], negated[other])
    assert _differ(base[changed], negated[changed])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace(
                "independent: true",
                "independent: true\n      focal_seats: [0]\n      background: [{player: tit_for_tat}]",
            ),
            "independent learners need two or more focal seats",
        ),
        (lambda t: t.replace("social/IteratedPD-v0", "social/IteratedPDSolo-v0"), "a population needs a multi-agent"),
        (
            lambda t: t.replace("{n_players: 2, horizon: 4}", "{n_players: 4, horizon: 4}"),
            "independent learners need the same focal seats at every level",
        ),
    ],
)
def test_independent_learner_problems_name_the_stage_key(tmp_path, edit, message):
    from upbringing.yamlfile import FileError

    path = tmp_path / "bad.yaml"
    path.write_text(edit(INDEPENDENT))
    with pytest.raises(FileError) as err:
        load_config(path)
    problems = err.value.problems
    assert any(message in p.message and (p.key or "").startswith("stages[0].population") for p in problems), problems
    assert all(p.file == str(path) for p in problems)


def test_language_model_learners_learn_side_by_side(tmp_path):
    """Two tiny LM learners in a stag hunt: one lockstep update each, from different value heads, on their own rows."""
    import torch
    from upbringing.agents.lm import LMAgent, LMConfig

    stage = StageConfig.model_validate(
        {
            "name": "stag",
            "env": "social/StagHunt-v0",
            "levels": [{"n_players": 2, "horizon": 4}],
            "promotion": {"metric": "return", "threshold": 1.0},
            "budget": 1000,
            "population": {"independent": True},
        }
    )
    config = LMConfig(model="tiny", n_steps=4, minibatch_size=8, n_epochs=1, device="cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        team = Team({"player_0": LMAgent(config, 0), "player_1": LMAgent(config, 1)})
        initial = [{k: v.clone() for k, v in a.policy.trainable_state().items()} for a in team.members.values()]
        venv = EpisodeLog(make_population_vec_env(StageEnvFactory(stage, dict(stage.levels[0])), 4))
        venv.seed(3)
        metrics = team.learn(venv, 16)
    finally:
        torch.set_num_threads(before)
    assert metrics["train/player_0/updates"] == metrics["train/player_1/updates"] == 1
    assert len(venv.finished) == 4 and "train/player_1/episode_return" in metrics
    for agent, init in zip(team.members.values(), initial):
        assert agent.num_timesteps == 8  # its own two rows, four steps
        assert any(not torch.equal(v, init[k]) for k, v in agent.policy.trainable_state().items())
    a, b = (a.policy.trainable_state() for a in team.members.values())
    assert any(not torch.equal(a[k], b[k]) for k in a)
    team.save(tmp_path / "team")
    assert {p.name for p in (tmp_path / "team").iterdir()} == {"player_0", "player_1"}


def test_the_independent_experiment_config_loads():
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "configs" / "social_independent.yaml")
    assert config.stages[0].population.independent
