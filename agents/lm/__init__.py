"""Language-model agents: exact action scoring with one shared prompt pass, PPO, optional LoRA.

``from agents.lm import LMAgent, LMConfig``. The config imports nothing heavy; the agent (torch, transformers) is
imported on first use, so validating a run config stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from upbringing.agents.lm.config import LMConfig, LoRAConfig

if TYPE_CHECKING:
    from upbringing.agents.lm.agent import LMAgent

__all__ = ["LMAgent", "LMConfig", "LoRAConfig"]


def __getattr__(name: str) -> Any:
    if name == "LMAgent":
        from upbringing.agents.lm.agent import LMAgent

        return LMAgent
    raise AttributeError(f"module 'upbringing.agents.lm' has no attribute {name!r}")
