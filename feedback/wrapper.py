"""The ``FeedbackReward`` wrapper: the learned reward model's output as the named reward term ``feedback``.

A stage chooses how feedback enters the reward (``FeedbackConfig.mode``):

- ``oracle``: nothing is added; the learner gets the env's reward (plus any other shaping terms);
- ``learned``: term ``feedback`` (the normalised learned reward times ``weight``) is added and term
  ``env_removed = -env`` cancels the env's task reward, so the learner is trained on the learned reward while the
  logged terms still add up to what it received;
- ``mix``: term ``feedback`` (times ``weight``) is added on top of the env's reward.

The wrapper scores ``(observation before the step, action[, step text])``, the same step features the reward
model was trained on, with a :class:`~feedback.reward_model.LearnedReward` shared with the training loop (updated
in place between chunks; for subprocess envs, push new weights with ``venv.env_method("set_feedback_state", s)``).
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
from upbringing.envs.terms import AddRewardTerms, RecordEnvReward
from upbringing.feedback.features import step_text
from upbringing.feedback.reward_model import LearnedReward

Mode = Literal["oracle", "learned", "mix"]


def _records_terms(env: gym.Env) -> bool:
    """Whether a wrapper beneath already puts ``reward_terms`` (with the ``env`` term) into every step's info."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, RecordEnvReward | AddRewardTerms):
            return True
        env = env.env
    return False


class FeedbackReward(AddRewardTerms):
    """Add the learned reward as term ``feedback`` (see the module docstring for the three modes).

    Args:
        env: The env (wrapped in :class:`~envs.terms.RecordEnvReward` first if no reward-term wrapper is beneath,
            so the ``env`` term is always recorded).
        scorer: The learned per-step reward.
        mode: ``oracle``, ``learned`` or ``mix``.
        weight: Factor on the ``feedback`` term.

    Also turns on ``info_scene`` in envs that have it (physics), so queries about these episodes carry pictures.
    """

    def __init__(self, env: gym.Env, scorer: LearnedReward, mode: Mode = "learned", weight: float = 1.0):
        if mode not in ("oracle", "learned", "mix"):
            raise ValueError(f"unknown feedback mode {mode!r}; expected 'oracle', 'learned' or 'mix'")
        # Episodes under feedback may be shown to people: envs that can put a drawing of their scene into each info
        # (the physics envs' ``info_scene``) are asked to, so the feedback page can picture them.
        if hasattr(env.unwrapped, "info_scene"):
            env.unwrapped.info_scene = True
        super().__init__(env if _records_terms(env) else RecordEnvReward(env))
        self.scorer = scorer
        self.mode = mode
        self.weight = float(weight)
        self._obs: Any = None
        self._info: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs, self._info = obs, info
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        self._obs, self._info = obs, info
        return obs, reward, terminated, truncated, info

    def terms(self, action: Any, info: dict[str, Any]) -> dict[str, float]:
        if self.mode == "oracle":
            return {}
        text = step_text(self._info, action) if self.scorer.featurizer.uses_text else None
        terms = {"feedback": self.weight * self.scorer(self._obs, action, text)}
        if self.mode == "learned":
            terms["env_removed"] = -float(info["reward_terms"]["env"])
        return terms

    def set_feedback_state(self, state: dict[str, Any]) -> None:
        """Load new reward-model weights (from :meth:`LearnedReward.state`), e.g. inside an env subprocess."""
        self.scorer.load_state(state)
