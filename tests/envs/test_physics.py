"""Physics envs: developmental order, success-only rewards, seeded worlds, held-out splits, clear argument errors.

The Gymnasium API, the text view and determinism of every id, level and split are checked in test_contract.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from upbringing import envs
from upbringing.envs.physics import SPECS

CASES = [(spec, level, i) for spec in SPECS for i, level in enumerate(spec.levels)]
IDS = [f"{spec.id}-L{i}" for spec, _, i in CASES]


def test_specs_are_registered_in_developmental_order():
    ids = [spec.id for spec in envs.list_specs() if spec.family == "physics"]
    assert ids == [
        "physics/ObjectPermanence-v0",
        "physics/Support-v0",
        "physics/Containment-v0",
        "physics/Collision-v0",
        "physics/Stability-v0",
    ]
    ages = [spec.extra["age_months"][0] for spec in SPECS]
    assert ages == sorted(ages)
    for spec in SPECS:
        assert spec.extra["source"] and spec.extra["concept"]
        assert spec.load().event_names == spec.event_names, "class and spec must declare the same events"
        assert len(spec.levels) >= 3 and all(level for level in spec.levels)


@pytest.mark.parametrize(("spec", "level", "index"), CASES, ids=IDS)
def test_reward_is_one_for_success_and_zero_otherwise(spec, level, index):
    env = envs.make(spec.id, **level)
    _, info = env.reset(seed=index)
    rng = np.random.default_rng(index)
    finished = 0
    while finished < 4:
        _, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        assert not truncated, "physics episodes end by the task, never by a step limit"
        if terminated:
            assert "success" in info and reward == (1.0 if info["success"] else 0.0)
            finished += 1
            _, info = env.reset()
        else:
            assert "success" not in info and reward == 0.0


@pytest.mark.parametrize(("spec", "level", "index"), CASES, ids=IDS)
def test_different_seeds_give_different_worlds(spec, level, index):
    env = envs.make(spec.id, **level)
    worlds = {env.reset(seed=seed)[0].tobytes() for seed in range(10)}
    assert len(worlds) >= 3, "the seed must decide the world"


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_eval_split_draws_other_tasks(spec):
    train, held_out = envs.make(spec.id, split="train"), envs.make(spec.id, split="eval")
    seen = {train.reset(seed=s)[0].tobytes() for s in range(30)}
    assert not seen & {held_out.reset(seed=s)[0].tobytes() for s in range(30)}


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_action_texts_and_text_describe_the_scene(spec):
    env = envs.make(spec.id)
    _, info = env.reset(seed=0)
    assert len(set(info["action_texts"])) == env.action_space.n, "each action needs its own text"
    assert any(ch.isdigit() for ch in info["text"]) and " m" in info["text"], "the text must be quantitative"
    _, _, _, _, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
    assert info["text"].strip()


def test_masked_action_does_nothing_but_uses_a_decision():
    env = envs.make("physics/Support-v0", n_supports=4, n_loads=1)
    _, info = env.reset(seed=1)
    env.step(0)
    plank = env.unwrapped.world.plank.position
    _, reward, done, _, info = env.step(0)  # post 1 is already out
    assert info["action_mask"][0] == 0 and reward == 0.0 and not done
    assert "not possible" in info["text"]
    assert env.unwrapped.world.plank.position == plank
    assert env.unwrapped.decisions_left == 1


def test_action_outside_the_space_is_an_error():
    env = envs.make("physics/Collision-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an int"):
        env.step(99)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("physics/ObjectPermanence-v0", {"screen_width": -3}, "screen_width must be an int in"),
        ("physics/ObjectPermanence-v0", {"n_objects": 1.5}, "n_objects must be an int in"),
        ("physics/Support-v0", {"n_supports": 3, "keep": 3}, "keep must be an int in"),
        ("physics/Containment-v0", {"flaws": "some"}, "flaws must be one of"),
        ("physics/Containment-v0", {"n_containers": 5}, "n_containers must be an int in"),
        ("physics/Containment-v0", {"moving": 1}, "moving must be true or false"),
        ("physics/Collision-v0", {"vary_mass": True}, "vary_mass=True needs struck=True"),
        ("physics/Collision-v0", {"struck": "yes"}, "struck must be true or false"),
        ("physics/Stability-v0", {"split": "test"}, "split must be one of"),
        ("physics/Stability-v0", {"n_offset": 5}, "unknown argument"),
    ],
)
def test_bad_kwargs_give_a_clear_error(env_id, kwargs, message):
    with pytest.raises(envs.EnvArgumentError, match=message) as err:
        envs.make(env_id, **kwargs)
    assert env_id in str(err.value)
