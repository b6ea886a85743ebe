"""Every social env id, at every level, keeps the PettingZoo / Gymnasium API, the info contract and determinism."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence
from pettingzoo.test import parallel_api_test, parallel_seed_test
from upbringing import envs
from upbringing.envs.contract import check_info

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
def test_parallel_env_passes_pettingzoo_api_and_seed_tests(spec, level) -> None:
    kwargs = spec.levels[level]
    parallel_api_test(envs.make(spec.id, **kwargs), num_cycles=200)
    parallel_seed_test(lambda: envs.make(spec.id, **kwargs))


@pytest.mark.parametrize(("spec", "level"), PARALLEL, ids=_ids(PARALLEL))
def test_parallel_episode_keeps_the_info_contract_and_reports_metrics(spec, level) -> None:
    env = envs.make(spec.id, render_mode="ansi", **spec.levels[level])
    obs, infos = env.reset(seed=0)
    for agent in env.agents:
        assert env.observation_space(agent).contains(obs[agent])
        check_info(infos[agent], env.action_space(agent).n, spec.event_names, at_reset=True)
    rng = np.random.default_rng(0)
    steps = 0
    while env.agents:
        actions = {a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in env.agents}
        live = list(env.agents)
        obs, rewards, terminations, truncations, infos = env.step(actions)
        steps += 1
        for agent in live:
            assert env.observation_space(agent).contains(obs[agent]), obs[agent]
            check_info(infos[agent], env.action_space(agent).n, spec.event_names)
            assert isinstance(rewards[agent], float)
        assert isinstance(env.render(), str)
    assert steps >= 1
    for agent in live:
        assert terminations[agent] or truncations[agent]
        assert set(infos[agent]["social"]) >= METRICS
        assert all(np.isfinite(v) for v in infos[agent]["social"].values())


@pytest.mark.parametrize(("spec", "level"), SOLO, ids=_ids(SOLO))
def test_solo_env_passes_check_env_and_the_info_contract(spec, level) -> None:
    env = envs.make(spec.id, **spec.levels[level])
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=1)
    check_info(info, env.action_space.n, spec.event_names, at_reset=True)
    assert len(info["opponents"]) == env.unwrapped.game.n_players - 1
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        check_info(info, env.action_space.n, spec.event_names)
        assert env.observation_space.contains(obs)
        assert -1.0 <= reward <= 1.0
        done = terminated or truncated
    assert set(info["social"]) >= METRICS


@pytest.mark.parametrize(("spec", "level"), SOLO, ids=_ids(SOLO))
def test_solo_env_is_deterministic_from_the_seed(spec, level) -> None:
    def rollout(seed: int) -> list:
        env = envs.make(spec.id, opponent_pool=_pool(spec.id), **spec.levels[level])
        env.action_space.seed(seed)
        trace = []
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


def _pool(env_id: str) -> list[str]:
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


@pytest.mark.parametrize(("spec", "level"), PARALLEL, ids=_ids(PARALLEL))
def test_parallel_env_repeats_a_whole_episode_from_the_seed(spec, level) -> None:
    # PettingZoo's parallel seed test stops after one step; this plays whole episodes.
    def rollout(seed: int) -> list:
        env = envs.make(spec.id, **spec.levels[level])
        rng = np.random.default_rng(0)
        trace = [env.reset(seed=seed)]
        while env.agents:
            trace.append(env.step({a: int(rng.integers(env.action_space(a).n)) for a in env.agents}))
        trace.append(env.reset())
        return trace

    first, again = rollout(3), rollout(3)
    assert len(first) == len(again)
    assert all(data_equivalence(a, b) for a, b in zip(first, again))
