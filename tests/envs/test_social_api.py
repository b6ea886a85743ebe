"""Social envs: a parallel id and a solo id per game, social metrics at the end of every episode, seeded opponent
pools, the numeric-only view, clear argument errors.

The PettingZoo / Gymnasium API, the text view and determinism of every id and level are checked in test_contract.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from upbringing import envs

SOCIAL = [s for s in envs.list_specs() if s.family == "social"]
PARALLEL = [(s, i) for s in SOCIAL if s.api == "pettingzoo" for i in range(len(s.levels))]
SOLO = [(s, i) for s in SOCIAL if s.api == "gymnasium" for i in range(len(s.levels))]
METRICS = {"efficiency", "equality", "sustainability", "peace", "cooperation_rate"}


def _ids(cases):
    return [f"{s.id}[{i}]" for s, i in cases]


def test_every_game_has_a_parallel_id_and_a_solo_id() -> None:
    ids = {s.id for s in SOCIAL}
    for game in ("IteratedPD", "StagHunt", "Chicken", "PublicGoods", "Commons"):
        assert f"social/{game}-v0" in ids
        assert f"social/{game}Solo-v0" in ids
    assert {s.api for s in SOCIAL if "Solo" in s.id} == {"gymnasium"}
    assert {s.api for s in SOCIAL if "Solo" not in s.id} == {"pettingzoo"}


@pytest.mark.parametrize("spec", SOCIAL, ids=[s.id for s in SOCIAL])
def test_spec_declares_the_event_names_of_its_class(spec) -> None:
    cls = spec.load()
    declared = cls.game_cls.event_names if spec.api == "gymnasium" else cls.event_names
    assert spec.event_names == declared
    assert len(spec.levels) >= 2


@pytest.mark.parametrize(("spec", "level"), PARALLEL, ids=_ids(PARALLEL))
def test_parallel_episode_renders_and_ends_with_social_metrics(spec, level) -> None:
    env = envs.make(spec.id, render_mode="ansi", **spec.levels[level])
    _, infos = env.reset(seed=0)
    rng = np.random.default_rng(0)
    steps = 0
    while env.agents:
        actions = {a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in env.agents}
        live = list(env.agents)
        _, _, terminations, truncations, infos = env.step(actions)
        steps += 1
        assert isinstance(env.render(), str)
    assert steps >= 1
    for agent in live:
        assert terminations[agent] or truncations[agent]
        assert set(infos[agent]["social"]) >= METRICS
        assert all(np.isfinite(v) for v in infos[agent]["social"].values())


@pytest.mark.parametrize(("spec", "level"), SOLO, ids=_ids(SOLO))
def test_solo_episode_names_opponents_and_ends_with_social_metrics(spec, level) -> None:
    env = envs.make(spec.id, **spec.levels[level])
    env.action_space.seed(1)
    _, info = env.reset(seed=1)
    assert len(info["opponents"]) == env.unwrapped.game.n_players - 1
    done = False
    while not done:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert -1.0 <= reward <= 1.0
        done = terminated or truncated
    assert set(info["social"]) >= METRICS


@pytest.mark.parametrize(("spec", "level"), SOLO, ids=_ids(SOLO))
def test_stochastic_opponent_pools_are_seeded_too(spec, level) -> None:
    # test_contract.py plays the default opponents; a pool of random and noisy players must follow the seed as well
    # (the agent's actions are the same for both seeds, so a difference comes from the env).
    def rollout(seed: int) -> list:
        env = envs.make(spec.id, opponent_pool=_pool(spec.id), **spec.levels[level])
        env.action_space.seed(0)
        trace: list[tuple[Any, ...]] = []
        obs, info = env.reset(seed=seed)
        trace.append((obs.tolist(), info["opponents"]))
        for _ in range(3):
            done = False
            while not done:
                obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
                trace.append((obs.tolist(), reward, info.get("text")))
                done = terminated or truncated
            obs, info = env.reset()
            trace.append((obs.tolist(), info["opponents"]))
        return trace

    assert rollout(7) == rollout(7)
    assert rollout(7) != rollout(8)


def _pool(env_id: str) -> list[str | dict[str, Any]]:
    """Stochastic background players for each game, so the seed decides their play too."""
    if "Commons" in env_id:
        return ["random", "sustainable_harvester", "greedy_harvester"]
    if "PublicGoods" in env_id:
        return ["random", "fixed_contributor"]
    return [{"name": "random", "p_cooperate": 0.7}, "generous_tit_for_tat", "grim_trigger"]


def test_text_view_can_be_turned_off_for_numeric_learners() -> None:
    env = envs.make("social/IteratedPD-v0", text_view=False)
    _, infos = env.reset(seed=0)
    _, _, _, _, infos = env.step({"player_0": 0, "player_1": 1})
    assert "text" not in infos["player_0"] and "action_texts" not in infos["player_0"]
    assert infos["player_0"]["events"] == {"cooperated": 1.0, "was_betrayed": 1.0}


def test_unknown_arguments_and_bad_values_name_the_env_and_the_problem() -> None:
    with pytest.raises(envs.EnvArgumentError, match=r"social/IteratedPD-v0.*'horizn'"):
        envs.make("social/IteratedPD-v0", horizn=5)
    with pytest.raises(envs.EnvArgumentError, match=r"social/CommonsSolo-v0.*'horizn'.*accepted"):
        envs.make("social/CommonsSolo-v0", horizn=5)
    with pytest.raises(envs.EnvArgumentError, match="continuation"):
        envs.make("social/StagHunt-v0", continuation=1.5)
    with pytest.raises(envs.EnvArgumentError, match="payoffs must map exactly R"):
        envs.make("social/Chicken-v0", payoffs={"R": 1})
    with pytest.raises(envs.EnvArgumentError, match="opponents must name 1 or 3"):
        envs.make("social/PublicGoodsSolo-v0", opponents=["always_defect", "always_defect"])
