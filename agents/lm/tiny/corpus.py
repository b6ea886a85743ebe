"""The text the offline tiny model's tokenizer is trained on: general English plus the project's env texts.

:func:`corpus` returns the hand-written English below followed by every situation and action text that the
registered envs produce over a few seeded episodes per level (:func:`harvest_env_texts`), so the tokenizer has
short codes for the words the agents actually read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from upbringing import envs

log = logging.getLogger(__name__)

# General English in the registers the curriculum uses: plain descriptions of objects and motion, choices among
# people, and short moral stories. Written for this project; it only has to give the tokenizer common words.
GENERAL_ENGLISH = """
The block sits on the table. A red block is on top of a blue block, and a green ball rolls down the ramp.
If you push the tower too hard, it will fall. Stack the blocks carefully so the tower stays up.
The ball is heavy and the box is light. The cup is full of water; if you drop it, the water will spill.
You can move left, move right, wait, pick up the block, put down the block, push, pull, lift or throw.
The target is to the left of you. The wall is three steps away. The floor is flat and the slope is steep.
Gravity pulls everything down. A glass that falls on the floor breaks. A rubber ball that falls bounces.
The wind is strong today. The door is open and the window is closed. The light is on.
One, two, three, four, five, six, seven, eight, nine, ten. First, second, third, last. Zero points.
You see a tall tower of five blocks. The top block is wobbling. The base is wide and steady.
Your hand holds a small stone. You may place it on the pile or keep it. The pile is almost at the edge.

You and your partner can each cooperate or defect. If you both cooperate, you both get three points.
If you defect while your partner cooperates, you get five points and your partner gets nothing.
If you both defect, you each get one point. Last round your partner cooperated. Last round they defected.
The village shares a lake with many fish. Each family may fish a little or a lot. If everyone takes too much,
the fish will be gone next year. You can take two fish, take five fish, or take none.
The group is building a bridge. Each member can give time or stay home. Some members did not help.
You promised to help your neighbour on Sunday. You can keep your promise or break it.
The players may punish those who free ride, but punishing costs them one coin.
You have ten coins. You can give some to the common pot. The pot is doubled and shared equally.
Your friend asks you to share your lunch. Another child took a toy without asking.
Round four of ten. Your score is twelve; their score is nine. The other player chose to trust you.

Mia found a wallet on the street. It had money and a card with a name. She could keep it or return it.
Tom broke his mother's vase by accident. He could tell the truth or say that the cat did it.
A new student sits alone at lunch. You could invite her to your table, ignore her, or laugh at her.
Sam promised to feed the neighbour's dog while they were away, but his friends invited him to the beach.
The shopkeeper gave you too much change. You notice the mistake after you leave the shop.
Your little brother is crying because his tower fell down. You can help him build it again.
It is wrong to hurt others, to lie, to steal, or to break a promise. It is good to help, to share and to be fair.
Being honest is hard when the truth is unpleasant. A fair rule treats everyone the same way.
She told the teacher what happened. He said sorry and gave the ball back. They shook hands and played together.
Do you help the old man carry his bags, or do you walk past? Will you tell the truth, or will you lie?
Everyone agreed to take turns. When it was his turn, he let his sister go first because she was sad.

What do you do? Choose one action. You chose to wait. You chose to help. Nothing happened. The episode ended.
You succeeded. You failed. Try again. Good. Well done. That was unkind. That was fair. That was brave.
Option A: take the left path. Option B: take the right path. The left arm pays more often than the right arm.
Pull the left lever. Pull the right lever. The machine paid one coin. The machine paid nothing.
"""


def harvest_env_texts(episodes_per_level: int = 3, max_steps: int = 40, seed: int = 0) -> Iterator[str]:
    """Yield the situation and action texts of every registered env over a few seeded random episodes per level.

    Envs that fail to build or step are skipped with a warning, so the tokenizer can be rebuilt while env families
    are still being written.
    """
    rng = np.random.default_rng(seed)
    for env_spec in envs.list_specs():
        for level in env_spec.levels:
            try:
                yield from _texts_of(env_spec.id, env_spec.api, dict(level), episodes_per_level, max_steps, rng)
            except Exception as err:  # a broken env must not stop the tokenizer build; it is reported instead
                log.warning("skipping %s level %s while harvesting texts: %s", env_spec.id, level, err)


def _texts_of(
    env_id: str, api: str, level: dict[str, Any], episodes: int, max_steps: int, rng: np.random.Generator
) -> Iterator[str]:
    env = envs.make(env_id, **level)
    try:
        for _ in range(episodes):
            seed = int(rng.integers(2**31))
            if api == "gymnasium":
                _, info = env.reset(seed=seed)
                infos = {"agent": info}
            else:
                _, infos = env.reset(seed=seed)
            for _ in range(max_steps):
                actions = {}
                for agent, info in infos.items():
                    yield info["text"]
                    yield from info["action_texts"]
                    valid = np.flatnonzero(info["action_mask"])
                    actions[agent] = int(rng.choice(valid))
                if api == "gymnasium":
                    _, _, terminated, truncated, info = env.step(actions["agent"])
                    infos = {"agent": info}
                    if terminated or truncated:
                        yield info["text"]
                        break
                else:
                    _, _, _, _, infos = env.step(actions)
                    infos = {a: i for a, i in infos.items() if "text" in i}
                    if not env.agents or not infos:
                        break
    finally:
        env.close()


def corpus() -> list[str]:
    """The tokenizer's training corpus: :data:`GENERAL_ENGLISH` lines, then every harvested env text."""
    lines = [line.strip() for line in GENERAL_ENGLISH.splitlines() if line.strip()]
    lines.extend(harvest_env_texts())
    return lines
