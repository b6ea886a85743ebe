"""One contract for every registered env, at every level it declares: the standard API (Gymnasium's checker, or
PettingZoo's parallel API and seed tests), the text view of ``upbringing.envs.contract`` on every step, and whole
episodes that repeat exactly from the seed.

The cases come from the registry (``envs.list_specs()`` and each spec's ``levels``), so a new env or level is
checked without touching this file. Family behaviour (rewards, metrics, splits, stories) is tested beside each family.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from helpers.moralchoice import env_kwargs
from pettingzoo.test import parallel_api_test, parallel_seed_test
from upbringing import envs
from upbringing.envs.contract import check_info
from upbringing.envs.moral.storyfile import STORY_DIR
from upbringing.envs.registry import EnvSpec

HELD_OUT = {"split": "eval"}
# Keyword arguments an id is built with besides its level, one dict per variant checked: a file or folder the env
# reads, and the held-out split where the env has one. Ids not listed are built from their levels alone.
VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "physics/ObjectPermanence-v0": ({}, HELD_OUT),
    "physics/Support-v0": ({}, HELD_OUT),
    "physics/Containment-v0": ({}, HELD_OUT),
    "physics/Collision-v0": ({}, HELD_OUT),
    "physics/Stability-v0": ({}, HELD_OUT),
    "moral/Stories-v0": ({}, HELD_OUT),
    "moral/StoryFiles-v0": ({"story_dir": STORY_DIR},),
    # the project ships no MoralChoice data: a tiny CSV in the dataset's columns, written for this module
    "moral/MoralChoice-v0": (env_kwargs("moral/MoralChoice-v0", Path(tempfile.mkdtemp(prefix="contract-"))),),
}
MAX_EPISODE_STEPS = 1000  # every registered env ends its episodes far sooner; a hang fails instead of looping

Case = tuple[EnvSpec, int, dict[str, Any]]
CASES: list[Case] = [
    (spec, index, variant)
    for spec in envs.list_specs()
    for index in range(len(spec.levels))
    for variant in VARIANTS.get(spec.id, ({},))
]


def _case_id(case: Case) -> str:
    spec, index, variant = case
    shown = [f"{k}={v.name if isinstance(v, Path) else v}" for k, v in variant.items()]
    return f"{spec.id}[L{index}{''.join(',' + s for s in shown)}]"


def _make(case: Case) -> Any:
    spec, index, variant = case
    return envs.make(spec.id, **spec.levels[index], **variant)


def _view(info: dict[str, Any]) -> tuple[Any, ...]:
    """The text view of one info dict, comparable with ``==``."""
    return info["text"], list(info["action_texts"]), info["action_mask"].tolist(), sorted(info["events"].items())


def _play_gymnasium(env: Any, spec: EnvSpec, seed: int, episodes: int) -> list[Any]:
    """Play whole episodes with seeded random valid actions, checking the contract at every step; return the trace."""
    rng = np.random.default_rng(0)  # the env's seed alone decides the world; the actions depend only on what it shows
    n = env.action_space.n
    obs, info = env.reset(seed=seed)
    trace: list[Any] = []
    for _ in range(episodes):
        check_info(info, n, spec.event_names, at_reset=True)
        assert env.observation_space.contains(obs)
        trace.append((obs.tobytes(), _view(info)))
        for _ in range(MAX_EPISODE_STEPS):
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            obs, reward, terminated, truncated, info = env.step(action)
            check_info(info, n, spec.event_names)
            assert env.observation_space.contains(obs)
            assert isinstance(reward, float) and np.isfinite(reward), reward
            assert "success" not in info or terminated or truncated, "info['success'] belongs to the last step"
            trace.append((action, obs.tobytes(), reward, terminated, truncated, _view(info)))
            if terminated or truncated:
                break
        else:
            pytest.fail(f"an episode did not end in {MAX_EPISODE_STEPS} steps")
        obs, info = env.reset()
    return trace


def _play_pettingzoo(env: Any, spec: EnvSpec, seed: int, episodes: int) -> list[Any]:
    """The same for a ``ParallelEnv``: every live agent acts each step, and each agent's info keeps the contract."""
    rng = np.random.default_rng(0)
    trace: list[Any] = []
    for episode in range(episodes):
        obs, infos = env.reset(seed=seed if episode == 0 else None)
        for agent in env.agents:
            check_info(infos[agent], env.action_space(agent).n, spec.event_names, at_reset=True)
            assert env.observation_space(agent).contains(obs[agent])
        trace.append({a: (obs[a].tobytes(), _view(infos[a])) for a in env.agents})
        for _ in range(MAX_EPISODE_STEPS):
            live = list(env.agents)
            actions = {a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in live}
            obs, rewards, terminations, truncations, infos = env.step(actions)
            for agent in live:
                check_info(infos[agent], env.action_space(agent).n, spec.event_names)
                assert env.observation_space(agent).contains(obs[agent])
                assert isinstance(rewards[agent], float) and np.isfinite(rewards[agent]), rewards[agent]
                done = terminations[agent] or truncations[agent]
                assert "success" not in infos[agent] or done, "info['success'] belongs to the last step"
            trace.append(
                {
                    a: (actions[a], obs[a].tobytes(), rewards[a], terminations[a], truncations[a], _view(infos[a]))
                    for a in live
                }
            )
            if not env.agents:
                break
        else:
            pytest.fail(f"an episode did not end in {MAX_EPISODE_STEPS} steps")
    return trace


def _play(case: Case, seed: int, episodes: int = 2) -> list[Any]:
    spec = case[0]
    play = _play_gymnasium if spec.api == "gymnasium" else _play_pettingzoo
    return play(_make(case), spec, seed, episodes)


def test_variant_table_names_registered_ids() -> None:
    assert set(VARIANTS) <= {spec.id for spec in envs.list_specs()}


@pytest.mark.parametrize("spec", envs.list_specs(), ids=lambda s: s.id)
def test_spec_declares_levels_and_event_names(spec: EnvSpec) -> None:
    assert spec.levels and all(isinstance(level, dict) for level in spec.levels)
    assert spec.event_names and len(set(spec.event_names)) == len(spec.event_names)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_standard_api(case: Case) -> None:
    if case[0].api == "gymnasium":
        check_env(_make(case), skip_render_check=True)
    else:
        parallel_api_test(_make(case), num_cycles=200)
        parallel_seed_test(lambda: _make(case))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_text_view_on_every_step_and_same_seed_same_episodes(case: Case) -> None:
    first = _play(case, seed=7)  # checks the contract at every reset and step
    assert first == _play(case, seed=7), "the same seed must give the same episodes"
