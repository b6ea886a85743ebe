"""Collision and momentum: push a block (or knock one block into another) so that it stops on a target.

After Kotovsky & Baillargeon (1994): by 11 months infants expect a larger object to push a hit object farther.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pymunk
from upbringing.envs.arguments import check_bool, check_int
from upbringing.envs.physics.base import (
    COLOURS,
    NOMINAL,
    G,
    Outcome,
    Perturbation,
    PhysicsEnv,
    Sim,
    m,
    material,
)
from upbringing.envs.physics.params import band_uniform, coin, uniform

TABLE_LENGTH = 8.0
TABLE_HEIGHT = 1.0
SIZE = 0.3
FRICTION = 0.3  # block on table (pymunk multiplies the two frictions; the table's is 1)
ELASTICITY = 0.9  # each block; a block-block impact has restitution 0.9 * 0.9
DECEL = FRICTION * G
_TWO_DECEL = 2 * DECEL
_RESTITUTION = ELASTICITY * ELASTICITY  # of a block-block impact
ZONE_HALF = 0.2
SPEED_MIN, SPEED_MAX = 1.5, 4.5
STRENGTH_WORDS = ("very gently", "gently", "moderately", "firmly", "hard", "very hard")
PUSHER, STRUCK = f"{COLOURS[0]} block", f"{COLOURS[1]} block"

_TABLE_SAID = (
    f"A table {m(TABLE_LENGTH)} long spans x = 0 to {m(TABLE_LENGTH)}, {m(TABLE_HEIGHT)} above the floor; "
    "a block that slides past either end falls off. "
    f"Friction slows a sliding block by {DECEL:.1f} m/s every second, so a block moving at v m/s slides "
    f"v²/{2 * DECEL:.1f} m before it stops."
)


@dataclass(frozen=True)
class CollisionTask:
    """One collision task (all lengths in metres along the table, which spans ``0..TABLE_LENGTH``).

    Attributes:
        pusher_x: Where the block the agent pushes starts.
        pusher_mass: Its mass, kg.
        pusher_fragile: Whether it is glass.
        struck_x: Where the block to be knocked starts; ``None`` when the pushed block itself must reach the zone.
        struck_mass: Its mass, kg.
        struck_fragile: Whether it is glass.
        zone: The target zone ``(lo, hi)``.
        speeds: The push speeds on offer, m/s, gentlest first.
    """

    pusher_x: float
    pusher_mass: float
    pusher_fragile: bool
    struck_x: float | None
    struck_mass: float
    struck_fragile: bool
    zone: tuple[float, float]
    speeds: tuple[float, ...]


def textbook_stop(task: CollisionTask, direction: int, speed: float) -> float:
    """Where the goal block stops by the textbook model (uniform friction, restitution 0.81 impact).

    Used only to design tasks (so exactly one push solves each one); outcomes always come from pymunk.
    """
    return _stop(task.pusher_x, task.pusher_mass, task.struck_x, task.struck_mass, direction, speed)


def _stop(
    pusher_x: float, pusher_mass: float, struck_x: float | None, struck_mass: float, direction: int, speed: float
):
    if struck_x is None:
        return pusher_x + direction * speed * speed / _TWO_DECEL
    toward = 1 if struck_x > pusher_x else -1
    if direction != toward:
        return struck_x
    v2 = speed * speed - _TWO_DECEL * (abs(struck_x - pusher_x) - SIZE)
    if v2 <= 0:
        return struck_x
    v_struck = (1 + _RESTITUTION) * pusher_mass * math.sqrt(v2) / (pusher_mass + struck_mass)
    return struck_x + direction * v_struck * v_struck / _TWO_DECEL


class CollisionWorld:
    """Dynamics: a table with drops at both ends, one or two sliding blocks, a target zone painted on it."""

    def __init__(self, task: CollisionTask, physics: Perturbation = NOMINAL) -> None:
        self.task = task
        self.sim = Sim(physics=physics)
        self.sim.segment((0.0, TABLE_HEIGHT), (TABLE_LENGTH, TABLE_HEIGHT))
        self.sim.segment((-10.0, 0.0), (TABLE_LENGTH + 10.0, 0.0))
        y = TABLE_HEIGHT + SIZE / 2
        self.pusher = self.sim.box(
            task.pusher_x, y, SIZE, SIZE, task.pusher_mass, friction=FRICTION, elasticity=ELASTICITY,
            rotates=False, fragile=task.pusher_fragile,
        )  # fmt: skip
        self.struck = None
        if task.struck_x is not None:
            self.struck = self.sim.box(
                task.struck_x, y, SIZE, SIZE, task.struck_mass, friction=FRICTION, elasticity=ELASTICITY,
                rotates=False, fragile=task.struck_fragile,
            )  # fmt: skip
        self.goal = self.struck if self.struck is not None else self.pusher
        self.dropped: set[pymunk.Body] = set()

    def on_table(self, body: pymunk.Body) -> bool:
        """Whether ``body`` is still on the table top."""
        return body.position.y > TABLE_HEIGHT

    def in_zone(self) -> bool:
        """Whether the goal block rests on the table inside the target zone."""
        lo, hi = self.task.zone
        return self.on_table(self.goal) and lo <= self.goal.position.x <= hi

    def push(self, direction: int, speed: float) -> Outcome:
        """Give the pushed block ``speed`` (m/s) to the left (-1) or right (+1) and simulate until all rests."""
        self.pusher.apply_impulse_at_local_point((direction * speed * self.pusher.mass, 0.0))
        broken_before = len(self.sim.broken)
        self.sim.run(max_seconds=4.0)
        bodies = [b for b in (self.pusher, self.struck) if b is not None]
        newly_dropped = [b for b in bodies if not self.on_table(b) and b not in self.dropped]
        self.dropped.update(newly_dropped)
        events: dict[str, float] = {}
        if newly_dropped:
            events["object_dropped"] = float(len(newly_dropped))
        if len(self.sim.broken) > broken_before:
            events["object_broken"] = float(len(self.sim.broken) - broken_before)
        success = self.in_zone()
        if success:
            events["target_hit"] = 1.0
        done = success or not self.on_table(self.goal) or not self.on_table(self.pusher)
        return Outcome(events, done=done, success=success, facts={"dropped": len(newly_dropped)})


class CollisionEnv(PhysicsEnv):
    """Push a block left or right, gently to very hard, so that the goal block stops inside a target zone.

    The table is 8 m long and 1 m high; a block that slides past either end falls to the floor
    (``object_dropped``) and a glass block breaks on a hard impact (``object_broken``). Friction slows sliding
    blocks by 2.9 m/s every second. With ``struck=True`` the agent pushes one block into a second one, and the
    second must reach the zone: the agent has to judge momentum (masses differ when ``vary_mass=True``).

    - Actions: ``Discrete(2 * n_strengths)``; action ``a`` pushes to the left if ``a < n_strengths`` else to the
      right, with strength ``a % n_strengths`` (speeds evenly from 1.5 to 4.5 m/s). Every action is always valid.
    - Observation (``Box(-1, 1, (10,))``): pusher x, goal-block x, whether a second block exists, both masses,
      zone ends, pushes left (fraction), whether each block is still on the table; positions as ``2x/8 - 1``.
    - Reward: 1 when the goal block comes to rest inside the zone (``success``), else 0.
    - Episode: up to ``pushes`` decisions; it ends early on success or when a block needed falls off.
    - Events: ``target_hit``, ``object_dropped``, ``object_broken``.
    - Split: ``eval`` draws the starting position from interleaved 0.9 m bands disjoint from ``train``'s.
    - Shift: ``gravity`` and ``friction`` multiply g and every contact's friction coefficient, unannounced
      (the text keeps the nominal values); the default 1 leaves the world unchanged.

    Version history: v0, first version.
    """

    world_type = CollisionWorld
    event_names = ("target_hit", "object_dropped", "object_broken")

    def __init__(
        self,
        n_strengths: int = 3,
        pushes: int = 2,
        struck: bool = False,
        vary_mass: bool = False,
        split: str = "train",
        gravity: float = 1.0,
        friction: float = 1.0,
    ) -> None:
        self.n_strengths = check_int("n_strengths", n_strengths, 2, len(STRENGTH_WORDS))
        self.pushes = check_int("pushes", pushes, 1, 6)
        self.struck = check_bool("struck", struck)
        self.vary_mass = check_bool("vary_mass", vary_mass)
        if self.vary_mass and not self.struck:
            raise ValueError("vary_mass=True needs struck=True (masses only matter when one block hits another)")
        self.speeds = tuple(float(s) for s in np.linspace(SPEED_MIN, SPEED_MAX, self.n_strengths))
        self._pushes = [(d, s) for d in (-1, 1) for s in self.speeds]  # (direction, speed) of every action
        words = [
            STRENGTH_WORDS[round(i * (len(STRENGTH_WORDS) - 1) / (self.n_strengths - 1))]
            for i in range(self.n_strengths)
        ]
        self._action_texts = [
            f"push the {PUSHER} to the {side} {words[i]} ({self.speeds[i]:.1f} m/s)"
            for side in ("left", "right")
            for i in range(self.n_strengths)
        ]
        super().__init__(
            split,
            n_actions=2 * self.n_strengths,
            obs_size=10,
            max_decisions=self.pushes,
            gravity=gravity,
            friction=friction,
        )

    # task ----------------------------------------------------------------------------------------------------
    def _sample_task(self, rng: np.random.Generator) -> CollisionTask:
        for _ in range(1000):
            direction = coin(rng)
            strength = int(rng.integers(self.n_strengths))
            pusher_x = band_uniform(rng, 0.5, TABLE_LENGTH - 0.5, self.split)
            struck_x, struck_mass = None, 1.0
            if self.struck:
                struck_x = pusher_x + direction * uniform(rng, 0.5, 1.5)
                if self.vary_mass:
                    struck_mass = (0.5, 1.0, 2.0)[int(rng.random() * 3)]
            fragile = rng.random() < 0.3, rng.random() < 0.3
            speed = self.speeds[strength]
            centre = _stop(pusher_x, 1.0, struck_x, struck_mass, direction, speed) + uniform(rng, -0.05, 0.05)
            lo, hi = centre - ZONE_HALF, centre + ZONE_HALF
            if lo < 0.3 or hi > TABLE_LENGTH - 0.3 or (struck_x is not None and not 0.3 < struck_x < 7.7):
                continue
            if struck_x is not None and lo < max(pusher_x, struck_x) + SIZE and hi > min(pusher_x, struck_x) - SIZE:
                continue  # the zone must lie beyond the blocks
            # Exactly one push should solve it: every other push stops clear of the zone (0.15 m margin).
            near, far = lo - 0.15, hi + 0.15
            if all(
                not near < _stop(pusher_x, 1.0, struck_x, struck_mass, d, v) < far
                for d, v in self._pushes
                if d != direction or v != speed
            ):
                return CollisionTask(
                    pusher_x, 1.0, fragile[0], struck_x, struck_mass, fragile[1], (lo, hi), self.speeds
                )
        raise RuntimeError("could not design a collision task")  # unreachable for the accepted arguments

    # dynamics ------------------------------------------------------------------------------------------------
    def simulate(self, world: CollisionWorld, action: int) -> Outcome:
        direction = -1 if action < self.n_strengths else 1
        return world.push(direction, self.speeds[action % self.n_strengths])

    # numeric view --------------------------------------------------------------------------------------------
    def _observe(self) -> list[float]:
        w, t = self._world, self._world.task
        scale = 2 / TABLE_LENGTH  # positions as 2x/8 - 1
        # the text view reuses the positions read here: reset and step observe, then describe
        x, y = self._pusher_at = w.pusher.position
        lo, hi = t.zone
        obs = [
            scale * x - 1, 0.0, 0.0, t.pusher_mass / 2, 0.0, scale * lo - 1, scale * hi - 1,
            self.decisions_left / self.pushes, 1.0 if y > TABLE_HEIGHT else -1.0, 0.0,
        ]  # fmt: skip
        if w.struck is not None:
            sx, sy = self._goal_at = w.struck.position
            obs[1], obs[2], obs[4] = scale * sx - 1, 1.0, t.struck_mass / 2
            obs[9] = 1.0 if sy > TABLE_HEIGHT else -1.0
        else:
            self._goal_at = self._pusher_at
        return obs

    # text view -----------------------------------------------------------------------------------------------
    def describe(self) -> str:
        w, t = self._world, self._world.task
        lo, hi = t.zone
        x = self._pusher_at[0]
        text = (
            f"{_TABLE_SAID} The {PUSHER} ({material(t.pusher_fragile)}, {t.pusher_mass:.1f} kg) rests at x = {x:.1f} m."
        )
        goal, goal_x = PUSHER, x
        if w.struck is not None:
            goal, goal_x = STRUCK, self._goal_at[0]
            gap = goal_x - x
            side = "right" if gap > 0 else "left"
            text += (
                f" The {STRUCK} ({material(t.struck_fragile)}, {t.struck_mass:.1f} kg) rests at x = {goal_x:.1f} m, "
                f"{abs(gap):.1f} m to the {side} of the {PUSHER} (centre to centre; blocks are {SIZE:.1f} m wide). "
                f"Blocks bounce off each other with restitution {ELASTICITY * ELASTICITY:.2f}."
            )
        where = "right" if (lo + hi) / 2 > goal_x else "left"
        return (
            f"{text} A green target zone spans x = {lo:.2f}-{hi:.2f} m, to the {where} of the {goal}. "
            f"Goal: make the {goal} stop inside the zone by pushing the {PUSHER}. "
            f"Pushes left: {self.decisions_left} of {self.pushes}."
        )

    def action_texts(self) -> list[str]:
        return self._action_texts.copy()  # the same for every task; a copy, so callers may keep or change theirs

    def narrate(self, outcome: Outcome) -> str:
        w = self._world
        goal = STRUCK if w.struck is not None else PUSHER
        said = []
        if outcome.events.get("object_dropped"):
            said.append(f"{outcome.facts['dropped']} block(s) slid off the table and fell to the floor.")
        if outcome.events.get("object_broken"):
            said.append("A glass block broke.")
        x, y = self._goal_at
        if outcome.success:
            said.append(f"The {goal} stopped inside the target zone at x = {m(x)}.")
        elif y > TABLE_HEIGHT:  # still on the table
            said.append(f"The {goal} stopped at x = {m(x)}, outside the target zone.")
        return " ".join(said)
