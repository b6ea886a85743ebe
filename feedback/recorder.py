"""The ``VecEnv`` wrapper through which a feedback loop sees every transition a learner steps."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper


class TransitionSink(Protocol):
    """Receives transitions (:meth:`upbringing.feedback.loop.FeedbackLoop.add_transition`)."""

    def add_transition(
        self,
        env_index: int,
        obs: Any,
        action: Any,
        info: dict[str, Any],
        done: bool,
        obs_info: dict[str, Any] | None = None,
        reward: float | None = None,
    ) -> None: ...


class RecordTransitions(VecEnvWrapper):
    """A ``VecEnv`` wrapper that hands every transition to a :class:`~feedback.loop.FeedbackLoop` (observation
    before the step, action, the step's info, and the info that came with the observation, for its text)."""

    def __init__(self, venv: VecEnv, loop: TransitionSink):
        super().__init__(venv)
        self.loop = loop
        self._obs: np.ndarray | None = None
        self._obs_infos: list[dict[str, Any]] = [{} for _ in range(venv.num_envs)]
        self._actions: np.ndarray | None = None

    def reset(self):
        obs = self.venv.reset()
        self._obs = obs
        self._obs_infos = [dict(i) for i in self.venv.reset_infos]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for i in range(self.num_envs):
            reward = infos[i].get("reward_terms", {}).get("env", float(rewards[i]))
            self.loop.add_transition(
                i, self._obs[i], self._actions[i], infos[i], bool(dones[i]), self._obs_infos[i], reward=reward
            )
            # After an episode ends the VecEnv has reset that env: its new first info is in reset_infos.
            self._obs_infos[i] = self.venv.reset_infos[i] if dones[i] else infos[i]
        self._obs = obs
        return obs, rewards, dones, infos

    @property
    def reset_infos(self) -> list[dict[str, Any]]:
        """The wrapped VecEnv's reset infos, where agents read each episode's first info (agents/base.py)."""
        return self.venv.reset_infos

    @reset_infos.setter
    def reset_infos(self, value: list[dict[str, Any]]) -> None:
        pass  # VecEnv.__init__ assigns a fresh list; the wrapped VecEnv's own list is the real one
