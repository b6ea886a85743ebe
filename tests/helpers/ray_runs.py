"""A two-stage run small enough for Ray tests: SB3 PPO, 4 envs, 256 steps of permanence and of stories."""

from __future__ import annotations

STAGES = """\
agent: {kind: sb3_ppo, n_steps: 32, batch_size: 64, n_epochs: 2}
curriculum: {chunk_steps: 128, n_envs: 4, review_fraction: 0.0}
tracking: {wandb: off, sample_episodes: 0}
stages:
  - name: permanence
    env: physics/ObjectPermanence-v0
    levels: [{screen_width: 3, n_objects: 1, distractors: 0}]
    promotion: {metric: success, threshold: 0.99, window: 8, min_episodes: 8}
    eval_episodes: 4
    budget: 256
  - name: stories
    env: moral/Stories-v0
    levels: [{level: 0}]
    promotion: {metric: success, threshold: 0.99, window: 8, min_episodes: 8}
    eval_episodes: 4
    budget: 256
"""


def tiny_two_stage(seed: int, constitution: str | None = None) -> str:
    """The run's config text with ``seed`` (and a ``constitution`` line when one is named)."""
    head = f"name: tiny\nseed: {seed}\n" + (f"constitution: {constitution}\n" if constitution else "")
    return head + STAGES
