"""Rollout workers on Ray (``curriculum.vec_env: ray``): a VecEnv whose envs live in Ray actors.

Each actor (:class:`EnvWorker`) holds ``envs_per_worker`` copies of the current stage's env stack, built in the actor
from the stage's :class:`~upbringing.curriculum.factory.StageEnvFactory` (the env with every wrapper: numeric view,
reward terms, constitution, learned feedback, episode statistics), and steps them one after another exactly as SB3's
``DummyVecEnv`` does; the actors step side by side. The learner, and an LM policy with it, stays in the driver and
scores the whole batch at once. Env ``i`` of the VecEnv is env ``i % K`` of actor ``i // K`` and gets the seed
``DummyVecEnv`` would give it, so a chunk is the same chunk whatever the vectorization (exact resume).

Actors outlive a chunk (starting one takes a second): a pool per Ray session keeps them, and each chunk builds its
envs in them afresh. A worker that dies (its process killed, its node lost) is restarted by Ray (``max_restarts``);
the VecEnv then redoes that worker's part of the chunk from the chunk's start: the restarted actor rebuilds its envs
and replays every call since they were built (the seeded reset, each step's actions), which gives back the envs the
chunk had reached, since envs are deterministic given their seed and actions. The replayed observations, rewards and
dones are checked against what the learner already received, so nothing is lost or counted twice; one line says what
happened. This is the pattern of RLlib's env runners and of Syllabus' Ray curriculum, with SB3's VecEnv as the
interface the agents already consume.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common import env_util
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn
from upbringing.curriculum.factory import StageEnvFactory
from upbringing.curriculum.raycluster import connect
from upbringing.curriculum.rayconfig import RayConfig

MAX_RESTARTS = 4  # Ray restarts a dead actor this often before it is replaced by a fresh one
REPLAY_TRIES = 3  # a worker whose replay also dies is replaced; after this many tries the chunk fails
Call = tuple[str, tuple[Any, ...]]


class RolloutWorkerLost(RuntimeError):
    """A rollout worker died and could not be brought back to where the chunk was."""


def digest(obs: np.ndarray, rewards: Sequence[float] | np.ndarray, dones: Sequence[bool]) -> str:
    """A short fingerprint of what a step returned (what a replay must reproduce)."""
    h = hashlib.blake2b(digest_size=12)
    for part in (np.ascontiguousarray(obs), np.asarray(rewards, np.float64), np.asarray(dones, bool)):
        h.update(part.tobytes())
    return h.hexdigest()


class EnvWorker:
    """One rollout worker: ``n`` envs of the current stage, stepped in turn as SB3's ``DummyVecEnv`` steps them.

    Made a Ray actor with ``ray.remote(EnvWorker)``. A method called before :meth:`build` (an actor Ray restarted,
    whose envs are gone) returns None, and the driver replays the chunk into it.
    """

    def __init__(self) -> None:
        self.envs: list[gym.Env] | None = None

    def pid(self) -> int:
        """The actor's process id (tests kill it)."""
        return os.getpid()

    def build(self, factory: StageEnvFactory, n: int) -> tuple[gym.Space, gym.Space, dict[str, Any]]:
        """Close any envs held and build ``n`` fresh ones; return their observation and action spaces and metadata."""
        self.close()
        self.envs = [factory() for _ in range(n)]
        env = self.envs[0]
        return env.observation_space, env.action_space, dict(env.metadata)

    def reset(self, seeds: list[int | None], options: list[dict[str, Any]]) -> tuple[Any, ...] | None:
        if self.envs is None:
            return None
        obs, infos = [], []
        for env, seed, opts in zip(self.envs, seeds, options):
            o, info = env.reset(seed=seed, **({"options": opts} if opts else {}))
            obs.append(o)
            infos.append(info)
        stacked = np.stack(obs)
        return stacked, infos, digest(stacked, [], [])

    def step(self, actions: np.ndarray) -> tuple[Any, ...] | None:
        if self.envs is None:
            return None
        obs, rewards, dones, infos, reset_infos = [], [], [], [], []
        for env, action in zip(self.envs, actions):
            o, r, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated  # SB3's VecEnv conventions
            reset_info: dict[str, Any] | None = None
            if done:
                info["terminal_observation"] = o
                o, reset_info = env.reset()
            obs.append(o)
            rewards.append(float(r))
            dones.append(done)
            infos.append(info)
            reset_infos.append(reset_info)
        stacked = np.stack(obs)
        rews = np.asarray(rewards, np.float32)  # DummyVecEnv's reward buffer is float32
        return stacked, rews, np.asarray(dones, bool), infos, reset_infos, digest(stacked, rews, dones)

    def call(self, kind: str, name: str, indices: list[int], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``get_attr``, ``set_attr``, ``env_method`` or ``env_is_wrapped`` on the envs at ``indices``."""
        if self.envs is None:
            return None
        targets = [self.envs[i] for i in indices]
        if kind == "get_attr":
            return [env.get_wrapper_attr(name) for env in targets]
        if kind == "set_attr":
            for env in targets:
                setattr(env, name, args[0])
            return [None for _ in targets]
        if kind == "env_method":
            return [env.get_wrapper_attr(name)(*args, **kwargs) for env in targets]
        if kind == "has_attr":
            return [hasattr(env, name) or _has_wrapper_attr(env, name) for env in targets]
        if kind == "env_is_wrapped":
            return [env_util.is_wrapped(env, args[0]) for env in targets]
        raise ValueError(f"unknown call {kind}")

    def replay(self, factory: StageEnvFactory, n: int, calls: list[Call]) -> tuple[list[str | None], Any]:
        """Rebuild the envs and redo ``calls`` (everything since they were built); return each call's fingerprint
        (None for calls that return no observation) and the last call's result."""
        self.build(factory, n)
        prints: list[str | None] = []
        result: Any = None
        for method, args in calls:
            result = getattr(self, method)(*args)
            prints.append(result[-1] if method in ("reset", "step") else None)
        return prints, result

    def close(self) -> None:
        for env in self.envs or []:
            env.close()
        self.envs = None


def _has_wrapper_attr(env: gym.Env, name: str) -> bool:
    try:
        env.get_wrapper_attr(name)
    except AttributeError:
        return False
    return True


# One pool of actors per Ray session and worker settings: a run builds a VecEnv every chunk, its actors stay.
_POOLS: dict[tuple[Any, ...], list[Any]] = {}


def worker_pool(config: RayConfig) -> tuple[Any, list[Any]]:
    """Ray and the actors of ``config`` (started on first use in this Ray session)."""
    ray = connect(config.address, "curriculum.vec_env: ray")
    key = (ray.get_runtime_context().get_job_id(), config.address, config.workers, config.cpus_per_worker)
    if key not in _POOLS:
        _POOLS[key] = [new_worker(ray, config) for _ in range(config.workers)]
    return ray, _POOLS[key]


def new_worker(ray: Any, config: RayConfig) -> Any:
    """A fresh :class:`EnvWorker` actor, restarted by Ray when its process dies."""
    options: dict[str, Any] = {"max_restarts": MAX_RESTARTS}
    if config.cpus_per_worker is not None:
        options["num_cpus"] = config.cpus_per_worker
    return ray.remote(EnvWorker).options(**options).remote()


def make_ray_vec_env(factory: StageEnvFactory, n_envs: int, config: RayConfig) -> RayVecEnv:
    """A :class:`RayVecEnv` of ``n_envs`` copies of the stage's env stack on the pool's actors."""
    ray, actors = worker_pool(config)
    return RayVecEnv(ray, factory, actors, config.per_worker(n_envs), config)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class RayVecEnv(VecEnv):
    """An SB3 VecEnv over Ray actors, each holding ``per_worker`` envs of one stage (see the module docstring).

    Args:
        ray: The ``ray`` module (joined).
        factory: Builds the stage's env stack; sent to every actor.
        actors: The :class:`EnvWorker` actors (replaced in the list when one has to be).
        per_worker: Envs per actor.
        config: The workers' settings (to start a replacement actor).
        say: Where the one line about a restarted worker goes.
    """

    def __init__(
        self,
        ray: Any,
        factory: StageEnvFactory,
        actors: list[Any],
        per_worker: int,
        config: RayConfig,
        say: Callable[[str], None] = _stderr,
    ) -> None:
        self.ray, self.factory, self.actors, self.per_worker = ray, factory, actors, per_worker
        self.config, self.say = config, say
        self.calls: list[list[Call]] = [[] for _ in actors]  # per actor: every call since its envs were built
        self.prints: list[list[str | None]] = [[] for _ in actors]  # fingerprints of the calls that completed
        self.restarts = 0
        refs = [a.build.remote(factory, per_worker) for a in actors]
        built = [self._built(w, ref) for w, ref in enumerate(refs)]
        obs_space, action_space, metadata = built[0]
        if not isinstance(obs_space, gym.spaces.Box):
            raise TypeError(f"vec_env ray steps envs with Box observations (got {obs_space})")
        super().__init__(len(actors) * per_worker, obs_space, action_space)
        self._shape: tuple[int, ...] = obs_space.shape
        self.metadata = metadata
        self._pending: list[Any] | None = None

    # ------------------------------------------------------------------------------------------- calls to workers
    def _built(self, worker: int, ref: Any) -> Any:
        """The result of building the worker's envs; a worker that died on the way is replaced."""
        for _ in range(REPLAY_TRIES):
            try:
                return self.ray.get(ref)
            except self.ray.exceptions.RayActorError:
                self.actors[worker] = new_worker(self.ray, self.config)
                ref = self.actors[worker].build.remote(self.factory, self.per_worker)
        raise RolloutWorkerLost(f"rollout worker {worker} died while building its envs ({REPLAY_TRIES} tries)")

    def _send(self, worker: int, method: str, *args: Any) -> Any:
        self.calls[worker].append((method, args))
        return getattr(self.actors[worker], method).remote(*args)

    def _receive(self, worker: int, ref: Any) -> Any:
        """The result of the worker's last call, recovering the worker if it died on the way."""
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as err:
            result = self._recover(worker, type(err).__name__)
        else:
            if result is None:  # the actor died between two calls and Ray restarted it: its envs are gone
                result = self._recover(worker, "restarted by Ray between two calls")
        method = self.calls[worker][-1][0]
        self.prints[worker].append(result[-1] if method in ("reset", "step") else None)
        return result

    def _recover(self, worker: int, why: str) -> Any:
        """Bring a dead worker back to where the chunk was: replay its calls into the restarted (or a fresh) actor."""
        calls = self.calls[worker]
        for attempt in range(REPLAY_TRIES):
            if attempt > 0:  # the restarted actor died as well: start a fresh one in its place
                self.actors[worker] = new_worker(self.ray, self.config)
            try:
                prints, result = self.ray.get(self.actors[worker].replay.remote(self.factory, self.per_worker, calls))
                break
            except self.ray.exceptions.RayActorError:
                continue
        else:
            raise RolloutWorkerLost(f"rollout worker {worker} died and could not be restarted ({REPLAY_TRIES} tries)")
        done = self.prints[worker]
        if prints[: len(done)] != done:
            step = next(i for i, (a, b) in enumerate(zip(prints, done)) if a != b)
            raise RolloutWorkerLost(
                f"rollout worker {worker} was restarted, but replaying its calls gave a different result at call "
                f"{step} of {len(calls)}: its envs are not deterministic given their seeds and actions"
            )
        self.restarts += 1
        steps = sum(1 for method, _ in calls if method == "step")
        self.say(
            f"rollout worker {worker} died ({why}); restarted it and redid its part of the chunk from the chunk's "
            f"start ({steps} steps of {self.per_worker} envs replayed, results identical)"
        )
        return result

    def _rows(self, worker: int) -> slice:
        return slice(worker * self.per_worker, (worker + 1) * self.per_worker)

    def _by_worker(self, indices: VecEnvIndices) -> dict[int, list[int]]:
        """The VecEnv's env indices grouped by actor, as that actor's own indices."""
        groups: dict[int, list[int]] = {}
        for i in self._get_indices(indices):
            groups.setdefault(i // self.per_worker, []).append(i % self.per_worker)
        return groups

    def _call(self, kind: str, name: str, indices: VecEnvIndices, *args: Any, **kwargs: Any) -> list[Any]:
        groups = self._by_worker(indices)
        refs = {w: self._send(w, "call", kind, name, local, args, kwargs) for w, local in groups.items()}
        return [value for w in groups for value in self._receive(w, refs[w])]

    # ------------------------------------------------------------------------------------------- the VecEnv API
    def reset(self) -> VecEnvObs:
        k = self.per_worker
        refs = [
            self._send(w, "reset", self._seeds[w * k : (w + 1) * k], self._options[w * k : (w + 1) * k])
            for w in range(len(self.actors))
        ]
        obs = np.zeros((self.num_envs, *self._shape), self.observation_space.dtype)
        for w, ref in enumerate(refs):
            worker_obs, infos, _ = self._receive(w, ref)
            obs[self._rows(w)] = worker_obs
            self.reset_infos[self._rows(w)] = infos
        self._reset_seeds()  # seeds and options are used once, as in SB3's VecEnvs
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._pending = [self._send(w, "step", actions[self._rows(w)]) for w in range(len(self.actors))]

    def step_wait(self) -> VecEnvStepReturn:
        assert self._pending is not None, "step_wait() follows step_async()"
        obs = np.zeros((self.num_envs, *self._shape), self.observation_space.dtype)
        rewards = np.zeros(self.num_envs, np.float32)
        dones = np.zeros(self.num_envs, bool)
        infos: list[dict[str, Any]] = []
        for w, ref in enumerate(self._pending):
            worker_obs, worker_rewards, worker_dones, worker_infos, reset_infos, _ = self._receive(w, ref)
            rows = self._rows(w)
            obs[rows], rewards[rows], dones[rows] = worker_obs, worker_rewards, worker_dones
            infos.extend(worker_infos)
            for i, info in zip(range(rows.start, rows.stop), reset_infos):
                if info is not None:
                    self.reset_infos[i] = info
        self._pending = None
        return obs, rewards, dones, infos  # fresh copies already: Ray deserialized them

    def close(self) -> None:
        """Close the envs; the actors stay in the pool for the next chunk (a dead one is left to Ray)."""
        refs = [a.close.remote() for a in self.actors]
        for ref in refs:
            with contextlib.suppress(self.ray.exceptions.RayActorError):
                self.ray.get(ref)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._call("get_attr", attr_name, indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._call("set_attr", attr_name, indices, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list:
        return self._call("env_method", method_name, indices, *method_args, **kwargs)

    def has_attr(self, attr_name: str) -> bool:
        return all(self._call("has_attr", attr_name, None))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._call("env_is_wrapped", "", indices, wrapper_class)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs  # the stage envs render text, in their infos
