"""Keeping what earlier stages taught: CLEAR-style replay with behavioural cloning (``curriculum.retention``).

One shared policy trained stage after stage forgets: in the quickstart, review chunks (a 0.3 share) and demotion left
object permanence at 0.25 after stories, from 0.875 at mastery (issue 19). Rehearsal of old *tasks* is not enough,
because PPO's update on a review chunk is as small and as noisy as any other; what holds a skill is a loss that pins
the old behaviour on the old states at every update. Of the continual-RL methods:

- **CLEAR** (Rolnick et al. 2019, "Experience Replay for Continual Learning") replays stored experience of earlier
  tasks and adds behavioural cloning toward the policy that produced it: a KL from the stored action distribution to
  the current one, and an L2 between stored and current values. It needs no task boundaries in the network, works
  with any policy that gives a distribution (an LM scoring action texts does), and matched or beat EWC and
  Progress & Compress on Atari and DMLab sequences.
- Policy consolidation / distillation toward a snapshot (Kaplanis et al. 2019; Schwarz et al. 2018, "Progress &
  Compress") clones the *mastered* policy on earlier stages' states; it costs a second model or a distillation phase.
- Elastic weight consolidation (Kirkpatrick et al. 2017) penalises moving weights the Fisher information marks as
  important; with one small LM shared by every stage the important weights overlap, and in RL it did no better than
  CLEAR (Rolnick et al. 2019) and worse than behavioural cloning of replayed data (Wolczyk et al. 2022,
  "Disentangling Transfer in Continual Reinforcement Learning").

We use CLEAR, with one change that takes the consolidation idea: a stage's experience is recorded when the stage is
mastered (and re-recorded when it is re-mastered), by the policy that mastered it, so what is cloned is competent
behaviour rather than the early, mostly random, behaviour of the stage's first chunks. Every PPO minibatch afterwards
adds ``replay_share`` of stored decisions (drawn equally from every stored stage) and the cloning loss weighted by
``bc_coef`` (policy KL + ``value_coef`` x value L2; :meth:`upbringing.agents.lm.ppo.PPOTrainer.update`). The buffer
is bounded (``capacity`` decisions per stage) and saved as JSON in every checkpoint, so a resumed run continues
exactly.

Stages of independent learners (``population.independent``) are not recorded: their other learners live only in
that stage. The default is ``method: none`` so existing configs and the SB3 agent (whose PPO has no cloning loss) train
as before; the LM quickstart turns it on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from upbringing.agents.replay import CloningSettings, ReplayBuffer

REPLAY_FILE = "replay.json"  # in a checkpoint folder
_RECORD_STREAM = 0xC1EA  # seeds of the episodes a mastered stage's decisions are recorded on


class RetentionConfig(BaseModel):
    """How a mastered stage is kept (``curriculum.retention``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["none", "clear"] = Field(
        default="none",
        description="none: review chunks only; clear: replay of each mastered stage's decisions with behavioural "
        "cloning of the policy that made them (Rolnick et al. 2019), language-model agents only.",
    )
    replay_share: float = Field(default=0.25, ge=0.0, lt=1.0, description="Share of each minibatch that is replay.")
    bc_coef: float = Field(default=1.0, ge=0.0, description="Weight of the cloning loss (policy KL + value L2).")
    value_coef: float = Field(default=0.5, ge=0.0, description="Weight of value cloning relative to policy cloning.")
    record_steps: int = Field(
        default=256, gt=0, description="Env steps played by the mastered policy to record a stage's decisions."
    )
    capacity: int = Field(default=256, gt=0, description="Most decisions kept per stage (the buffer's bound).")

    @property
    def settings(self) -> CloningSettings:
        """What the agent's update needs."""
        return CloningSettings(self.replay_share, self.bc_coef, self.value_coef)


class Retention:
    """The run's retention state: the replay buffer, attached to the agent it trains.

    Args:
        config: The curriculum's retention settings.
        agent: The run's agent; with ``method: clear`` it must offer ``record_decisions`` and a ``replay`` slot
            (the language-model agent does).
        seed: The run's seed (the recording episodes' seeds derive from it).
    """

    def __init__(self, config: RetentionConfig, agent: Any, seed: int) -> None:
        self.config = config
        self.agent = agent
        self.seed = seed
        self.buffer = ReplayBuffer(config.capacity)
        self.enabled = config.method == "clear"
        if self.enabled:
            if not hasattr(agent, "record_decisions"):
                raise ValueError(f"retention method clear needs a language-model agent, not {type(agent).__name__}")
            agent.replay = (self.buffer, config.settings)

    def record(self, stage: int, name: str, make_venv: Any) -> dict[str, float]:
        """Record stage ``stage``'s decisions now (it was just mastered) from ``make_venv(seed)``; returns metrics."""
        if not self.enabled:
            return {}
        seed = int(np.random.SeedSequence([self.seed, _RECORD_STREAM, stage]).generate_state(1)[0])
        venv = make_venv(seed)
        try:
            samples = self.agent.record_decisions(venv, self.config.record_steps, seed)
        finally:
            venv.close()
        self.buffer.store(name, samples)
        return {f"retention/{name}/replay_samples": float(len(self.buffer.stages[name]))}

    def save(self, folder: Path) -> None:
        if self.enabled:
            self.buffer.save(Path(folder) / REPLAY_FILE)

    def load(self, folder: Path) -> None:
        path = Path(folder) / REPLAY_FILE
        if self.enabled and path.exists():
            self.buffer.load(path)
