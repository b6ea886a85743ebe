"""``curriculum.vec_env: ray``: rollout workers as Ray actors give the very run ``dummy`` gives, even when one dies."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from helpers.events import comparable
from helpers.ray_runs import tiny_two_stage
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.config import CurriculumConfig
from upbringing.curriculum.launch import train
from upbringing.curriculum.rayconfig import RayConfig
from upbringing.curriculum.runner import Run
from upbringing.yamlfile import FileError

ray = pytest.importorskip("ray")

CONFIG = tiny_two_stage(3, constitution="default")

RAY = ["curriculum.vec_env=ray", "curriculum.ray.workers=2"]


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG)
    return path


def _rollout(venv, steps: int, kill_at: int | None = None, seed: int = 11):
    """Seeded reset, then ``steps`` steps of fixed random actions; everything the learner would see."""
    venv.seed(seed)
    seen = [venv.reset(), [dict(i) for i in venv.reset_infos]]
    rng = np.random.default_rng(0)
    for t in range(steps):
        if t == kill_at:
            os.kill(ray.get(venv.actors[1].pid.remote()), signal.SIGKILL)
        masks = np.stack(venv.env_method("action_masks"))
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        obs, rewards, dones, infos = venv.step(actions)
        seen += [obs, rewards, dones, [(i.get("text"), i.get("reward_terms"), i.get("episode_stats")) for i in infos]]
        seen.append([dict(i).get("text") for i in venv.reset_infos])
    return seen


def _canon(x):
    """``x`` with every array as (dtype, values): comparable with ``==``, exactly."""
    if isinstance(x, np.ndarray):
        return (str(x.dtype), x.tolist())
    if isinstance(x, dict):
        return {k: _canon(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_canon(v) for v in x]
    return x


def _same(a, b) -> bool:
    return _canon(a) == _canon(b)


def test_ray_workers_step_the_stage_envs_as_dummy_does_and_replay_a_killed_one(local_ray, tmp_path, config_path):
    from upbringing.curriculum.stage_envs import make_vec_env

    run = Run(load_config(config_path), tmp_path / "run", progress=False)
    said: list[str] = []
    for stage in (0, 1):  # a physics level and a story stage, each with the default constitution's shaping
        factory = run.factory(stage, 0)
        dummy = make_vec_env(factory, CurriculumConfig(n_envs=4))
        reference = _rollout(dummy, 40)
        assert sum(bool(d.any()) for d in reference[4::5]) > 0  # episodes ended (and restarted) on the way
        venv = make_vec_env(factory, CurriculumConfig(n_envs=4, vec_env="ray", ray=RayConfig(workers=2)))
        assert venv.num_envs == 4 and venv.get_attr("action_space") == dummy.get_attr("action_space")
        assert _same(_rollout(venv, 40), reference)
        if stage == 1:
            pid = ray.get(venv.venv.actors[1].pid.remote())
            venv.venv.say = said.append
            assert _same(_rollout(venv, 40, kill_at=20), reference)  # killed mid-chunk: nothing lost or doubled
            assert venv.venv.restarts == 1 and ray.get(venv.venv.actors[1].pid.remote()) != pid
        venv.close()
        dummy.close()
    assert len(said) == 1 and said[0].startswith("rollout worker 1 died"), said


@pytest.mark.slow
def test_a_run_on_ray_workers_is_the_dummy_run_even_when_a_worker_is_killed(
    local_ray, tmp_path, config_path, monkeypatch
):
    from upbringing.curriculum.ray_envs import RayVecEnv

    dummy_dir, dummy = train(load_config(config_path), tmp_path / "dummy", progress=False)
    steps = {"n": 0}
    original = RayVecEnv.step_async

    def step_and_kill_once(self, actions):
        steps["n"] += 1
        if steps["n"] == 50:  # the second chunk, mid-rollout
            os.kill(ray.get(self.actors[0].pid.remote()), signal.SIGKILL)
        original(self, actions)

    monkeypatch.setattr(RayVecEnv, "step_async", step_and_kill_once)
    ray_dir, on_ray = train(load_config(config_path, RAY), tmp_path / "ray", progress=False)
    assert steps["n"] > 50
    assert on_ray == dummy
    assert comparable(ray_dir) == comparable(dummy_dir)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["curriculum.ray.workers=2"],
            "curriculum.ray: configures the rollout workers of vec_env: ray (got vec_env: dummy)",
        ),
        (
            [*RAY[:1], "curriculum.ray.workers=3"],
            "curriculum.ray: workers x envs_per_worker must equal curriculum.n_envs (4)",
        ),
        (
            [*RAY, "curriculum.ray.envs_per_worker=1"],
            "workers x envs_per_worker must equal curriculum.n_envs (4) (got 2 x 1)",
        ),
        ([*RAY, "curriculum.ray.threads=1"], "curriculum.ray.threads: unknown key"),
    ],
)
def test_ray_settings_that_make_no_sense_are_one_clear_error(config_path, overrides, message):
    with pytest.raises(FileError) as err:
        load_config(config_path, overrides)
    assert len(err.value.problems) == 1 and message in str(err.value.problems[0])


def test_vec_env_ray_without_ray_installed_is_one_clear_error(config_path, monkeypatch):
    monkeypatch.setattr("upbringing.curriculum.checks.ray_installed", lambda: False)
    with pytest.raises(FileError) as err:
        load_config(config_path, RAY)
    (problem,) = err.value.problems
    assert problem.key == "curriculum.vec_env" and "pip install 'upbringing[ray]'" in problem.message
