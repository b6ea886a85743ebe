"""Stable-Baselines3 PPO on the numeric view: the baseline that runs every curriculum without language models.

Different stages have different observation and action sizes, so the engine wraps every env in
:class:`NumericView`, which pads observations to one size and maps actions outside an env's own action set (or
masked) to its first valid action. SB3's PPO then trains one MLP policy through the whole curriculum.
Checkpoints are safetensors (policy and optimizer tensors) plus JSON (counters), never pickles.

SB3's ``learn`` drives its env itself; to learn beside other learners in one game the agent also collects rollouts
step by step (:class:`SB3Lockstep`): the same steps as SB3's ``collect_rollouts``, then SB3's own ``train``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import gymnasium as gym
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from upbringing.agents.base import Agent, Lockstep
from upbringing.agents.checkpoint import optimizer_from_tensors, optimizer_to_tensors, write_json_atomic

if TYPE_CHECKING:
    from sb3_contrib import MaskablePPO


class SB3PPOConfig(BaseModel):
    """Settings of the SB3 PPO baseline (see the SB3 PPO docs for each)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: Literal["sb3_ppo"] = Field(default="sb3_ppo", description="Stable-Baselines3 PPO on the numeric view.")
    n_steps: int = Field(default=256, gt=0, description="Steps per env per rollout.")
    batch_size: int = Field(default=64, gt=1, description="Minibatch size.")
    n_epochs: int = Field(default=4, gt=0, description="Epochs over each rollout.")
    learning_rate: float = Field(default=3e-4, gt=0, description="Adam learning rate (constant).")
    gamma: float = Field(default=0.99, gt=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(default=0.95, ge=0, le=1, description="GAE lambda.")
    clip_range: float = Field(default=0.2, gt=0, description="PPO clip range (constant).")
    ent_coef: float = Field(default=0.01, ge=0, description="Entropy bonus coefficient.")
    vf_coef: float = Field(default=0.5, ge=0, description="Value loss coefficient.")
    max_grad_norm: float = Field(default=0.5, gt=0, description="Gradient clipping norm.")
    net_arch: list[int] = Field(default_factory=lambda: [64, 64], description="Hidden layer sizes of the MLPs.")
    mask_invalid_actions: bool = Field(
        default=True,
        description="Maskable PPO (sb3-contrib): the policy never picks an action the env masks or does not have.",
    )


def pad_mask(mask: np.ndarray | None, n_inner: int, n_actions: int) -> np.ndarray:
    """An env's action mask widened to ``n_actions`` (actions it does not have are invalid)."""
    out = np.zeros(n_actions, dtype=bool)
    out[:n_inner] = True if mask is None else np.asarray(mask, dtype=bool)[:n_inner]
    return out


class NumericView(gym.Wrapper):
    """Pad the observation to ``obs_dim``, append a one-hot of the task, and widen the actions to ``n_actions``.

    The one-hot (``task`` of ``n_tasks``; a stage of the curriculum) tells one shared policy which world it is in, the
    usual task identifier of multi-task RL, so stages whose padded observations overlap do not interfere. An action
    the inner env does not have, or that its ``action_mask`` marks invalid, becomes the env's first valid action, so
    one fixed-size policy can act in every stage.
    """

    def __init__(self, env: gym.Env, obs_dim: int, n_actions: int, task: int = 0, n_tasks: int = 1):
        super().__init__(env)
        self._task_slot = obs_dim + task
        self._inner_n = int(cast(gym.spaces.Discrete, env.action_space).n)
        self._inner_dim = int(np.prod(cast(gym.spaces.Box, env.observation_space).shape))
        # Unbounded so every stage's padded space is the same space (SB3 checks equality when envs are swapped).
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim + n_tasks,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)
        self._n_actions, self._obs_size = n_actions, obs_dim + n_tasks
        self._mask: np.ndarray | None = None

    def action_masks(self) -> np.ndarray:
        """The valid actions of the padded action space (the method sb3-contrib's MaskablePPO reads)."""
        return pad_mask(self._mask, self._inner_n, self._n_actions)

    def _pad(self, obs: np.ndarray) -> np.ndarray:
        out = np.zeros((self._obs_size,), dtype=np.float32)
        out[: self._inner_dim] = np.asarray(obs, dtype=np.float32).ravel()
        out[self._task_slot] = 1.0
        return out

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._mask = info.get("action_mask")
        return self._pad(obs), info

    def step(self, action: Any):
        a = int(action)
        if a >= self._inner_n or (self._mask is not None and not self._mask[a]):
            a = int(np.flatnonzero(self._mask)[0]) if self._mask is not None else 0
        obs, reward, terminated, truncated, info = self.env.step(a)
        self._mask = info.get("action_mask")
        return self._pad(obs), reward, terminated, truncated, info


class SB3PPOAgent(Agent):
    """SB3 PPO (MlpPolicy) behind the :class:`agents.base.Agent` interface."""

    uses_text = False

    def __init__(
        self, config: SB3PPOConfig, seed: int, observation_space: gym.Space, action_space: gym.Space, n_envs: int
    ):
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import DummyVecEnv

        algo: type[PPO] | type[MaskablePPO] = PPO
        if config.mask_invalid_actions:
            from sb3_contrib import MaskablePPO  # same PPO, with invalid actions masked out of the policy

            algo = MaskablePPO
        from stable_baselines3.common.logger import Logger

        self.config = config
        # Placeholders so SB3 can build its networks for these spaces; learn() swaps in the stage's envs.
        self.model = algo(
            "MlpPolicy",
            DummyVecEnv([lambda: _SpacesEnv(observation_space, action_space)] * n_envs),
            n_steps=config.n_steps,
            batch_size=config.batch_size,
            n_epochs=config.n_epochs,
            learning_rate=config.learning_rate,
            gamma=config.gamma,
            gae_lambda=config.gae_lambda,
            clip_range=config.clip_range,
            ent_coef=config.ent_coef,
            vf_coef=config.vf_coef,
            max_grad_norm=config.max_grad_norm,
            policy_kwargs={"net_arch": list(config.net_arch)},
            seed=seed,
            device="cpu",
            verbose=0,
        )
        # A logger with no outputs: after learn() its values hold the last update's losses, which we return.
        self.model.set_logger(Logger(folder=None, output_formats=[]))

    def action_masks(self, infos: Sequence[dict[str, Any]]) -> np.ndarray:
        """The valid actions of each env, widened to the policy's action count (as :class:`NumericView` does)."""
        n = int(cast(gym.spaces.Discrete, self.model.action_space).n)
        return np.stack(
            [pad_mask(info.get("action_mask"), len(info.get("action_texts", [])) or n, n) for info in infos]
        )

    def act(self, obs: np.ndarray, infos: Sequence[dict[str, Any]], deterministic: bool = False) -> np.ndarray:
        if not self.config.mask_invalid_actions:
            actions, _ = self.model.predict(obs, deterministic=deterministic)
            return np.asarray(actions)
        masked = cast("MaskablePPO", self.model)  # mask_invalid_actions made it one
        actions, _ = masked.predict(obs, deterministic=deterministic, action_masks=self.action_masks(infos))
        return np.asarray(actions)

    def learn(self, venv: Any, steps: int) -> dict[str, float]:
        self.model.set_env(venv, force_reset=True)
        self.model._last_obs = None  # learn() resets the (freshly seeded) envs: chunks are independent of history
        self.model.learn(total_timesteps=steps, reset_num_timesteps=False, progress_bar=False)
        metrics = self.train_metrics()
        # Prioritized Level Replay's score (Jiang et al. 2021): the last rollout's mean positive GAE advantage.
        metrics["train/positive_value_loss"] = float(np.clip(self.model.rollout_buffer.advantages, 0.0, None).mean())
        return metrics

    def train_metrics(self) -> dict[str, float]:
        """The ``train/`` values SB3 logged in its last update (losses, KL, clip fraction, ...)."""
        values = self.model.logger.name_to_value
        return {k: float(v) for k, v in values.items() if k.startswith("train/") and isinstance(v, int | float)}

    def lockstep(self, n_envs: int) -> SB3Lockstep:
        return SB3Lockstep(self, n_envs)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        policy = self.model.policy
        save_file({k: v.contiguous() for k, v in policy.state_dict().items()}, str(path / "policy.safetensors"))
        tensors, meta = optimizer_to_tensors(policy.optimizer)
        save_file(tensors, str(path / "optimizer.safetensors"))
        write_json_atomic(
            path / "agent.json",
            {
                "kind": "sb3_ppo",
                "num_timesteps": self.model.num_timesteps,
                "n_updates": self.model._n_updates,
                "optimizer": meta,
            },
        )

    def load(self, path: Path) -> None:
        policy = self.model.policy
        policy.load_state_dict(load_file(str(path / "policy.safetensors")))
        state = json.loads((path / "agent.json").read_text())
        optimizer_from_tensors(policy.optimizer, load_file(str(path / "optimizer.safetensors")), state["optimizer"])
        self.model.num_timesteps = int(state["num_timesteps"])
        self.model._n_updates = int(state["n_updates"])


class SB3Lockstep(Lockstep):
    """SB3 PPO learning from rows that something else steps: SB3's ``collect_rollouts`` one step at a time.

    Each step does what ``collect_rollouts`` does (sample from the policy with the rows' action masks, bootstrap
    time-limited episodes with the value of their last observation, add to a rollout buffer); after ``n_steps`` steps
    it computes returns and advantages and runs SB3's own ``train`` on this buffer, a buffer of its own sized for its
    rows (the model's is sized for the ``VecEnv`` it was built with). Counters advance as in ``learn``.

    Args:
        agent: The agent whose model learns.
        n_envs: How many rows it holds.
    """

    def __init__(self, agent: SB3PPOAgent, n_envs: int) -> None:
        from stable_baselines3.common.buffers import RolloutBuffer

        self.agent = agent
        self.n_envs = n_envs
        model = agent.model
        masked = agent.config.mask_invalid_actions
        if masked:
            from sb3_contrib.common.maskable.buffers import MaskableRolloutBuffer as RolloutBuffer
        self.buffer = RolloutBuffer(
            model.n_steps,
            model.observation_space,
            model.action_space,
            device=model.device,
            gamma=model.gamma,
            gae_lambda=model.gae_lambda,
            n_envs=n_envs,
        )
        self.episode_starts = np.ones(n_envs, dtype=bool)
        self._step: tuple[Any, ...] | None = None

    @property
    def collected(self) -> int:
        return int(self.buffer.pos)

    def act(self, obs: np.ndarray, infos: Sequence[dict[str, Any]]) -> np.ndarray:
        import torch
        from stable_baselines3.common.utils import obs_as_tensor

        model = self.agent.model
        model.policy.set_training_mode(False)
        masks = self.agent.action_masks(infos) if self.agent.config.mask_invalid_actions else None
        with torch.no_grad():
            tensor = obs_as_tensor(obs, model.device)
            if masks is None:
                actions, values, log_probs = model.policy(tensor)
            else:
                actions, values, log_probs = model.policy(tensor, action_masks=masks)
        actions = actions.cpu().numpy()
        self._step = (np.array(obs), actions, values, log_probs, masks)
        return actions

    def observe(
        self,
        obs: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: Sequence[dict[str, Any]],
        reset_infos: Sequence[dict[str, Any]],
    ) -> dict[str, float] | None:
        import torch
        from stable_baselines3.common.utils import obs_as_tensor

        assert self._step is not None, "observe() follows act()"
        model = self.agent.model
        last_obs, actions, values, log_probs, masks = self._step
        self._step = None
        rewards = np.array(rewards, dtype=np.float32)
        model.num_timesteps += self.n_envs
        for i, done in enumerate(dones):  # time limits: bootstrap with the last state's value (SB3 issue #633)
            terminal = infos[i].get("terminal_observation")
            if done and terminal is not None and infos[i].get("TimeLimit.truncated", False):
                with torch.no_grad():
                    value = model.policy.predict_values(model.policy.obs_to_tensor(terminal)[0])[0]
                rewards[i] += model.gamma * float(value)
        extra = {} if masks is None else {"action_masks": masks}
        self.buffer.add(last_obs, actions.reshape(-1, 1), rewards, self.episode_starts, values, log_probs, **extra)
        self.episode_starts = np.array(dones, dtype=bool)
        if not self.buffer.full:
            return None
        with torch.no_grad():
            last_values = model.policy.predict_values(obs_as_tensor(obs, model.device))
        self.buffer.compute_returns_and_advantage(last_values=last_values, dones=self.episode_starts)
        own, model.rollout_buffer = model.rollout_buffer, self.buffer
        try:
            model.train()
        finally:
            model.rollout_buffer = own
        self.buffer.reset()
        return self.agent.train_metrics()


class _SpacesEnv(gym.Env):
    """Carries an observation and action space for SB3's constructor; never stepped."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any):  # pragma: no cover - never stepped
        raise RuntimeError("placeholder env for SB3's constructor; the engine supplies the real envs")


__all__ = ["NumericView", "SB3Lockstep", "SB3PPOAgent", "SB3PPOConfig"]
