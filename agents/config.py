"""The agent section of a run config: one typed model per kind of learner, chosen by ``kind``."""

from __future__ import annotations

from typing import Any

from upbringing.agents.base import Agent
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.sb3 import SB3PPOAgent, SB3PPOConfig

# The learners a config may name by ``kind`` (a discriminated union: `kind: sb3_ppo` or `kind: lm`).
AgentConfig = SB3PPOConfig | LMConfig


def build_agent(config: AgentConfig, seed: int, observation_space: Any, action_space: Any, n_envs: int) -> Agent:
    """Construct the agent a run config names. Numeric agents get the curriculum-wide padded spaces."""
    if isinstance(config, SB3PPOConfig):
        return SB3PPOAgent(config, seed, observation_space, action_space, n_envs)
    if isinstance(config, LMConfig):
        from upbringing.agents.lm import LMAgent

        return LMAgent(config, seed)
    raise ValueError(f"unknown agent kind {config.kind!r}")
