"""Stability: build a leaning tower out toward a goal, choosing where each new block goes, without it toppling.

After Baillargeon (1995): around 12.5 months infants judge whether an object resting on another will fall by where
its weight lies (its shape and centre of mass), not only by how much of it touches the support.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from upbringing.envs.arguments import check_bool, check_int
from upbringing.envs.physics.base import (
    NOMINAL,
    Outcome,
    Perturbation,
    PhysicsEnv,
    Sim,
    m,
    material,
    plural,
)
from upbringing.envs.physics.params import band_uniform, coin, uniform

WIDTH, HEIGHT = 0.4, 0.2
NEW_MASS = 1.0
MAX_OFFSET = 0.3  # the widest offered shift puts the new block's centre well past the top block's edge (0.2 m)
MARGIN = 0.04  # design margin (m): the intended solution keeps every centre of mass this far inside its support
SLACK = 0.03  # the goal lies this far short of the farthest reach the best solution gets
_HALF_WIDTH = WIDTH / 2
_TOWER_SAID = f", each {m(WIDTH)} wide and {m(HEIGHT)} tall, stands on the table; from the bottom: "


@dataclass(frozen=True)
class StabilityTask:
    """One stability task.

    Attributes:
        xs: Centres of the blocks already standing, bottom first, m (the bottom one rests on the table at x = 0).
        masses: Their masses, kg.
        fragile: Whether each is glass.
        goal: The top block's centre must end at or beyond this x (in the direction ``side``), m.
        side: +1 when the goal lies to the right, -1 to the left.
        n_place: How many blocks the agent adds.
    """

    xs: tuple[float, ...]
    masses: tuple[float, ...]
    fragile: tuple[bool, ...]
    goal: float
    side: int
    n_place: int


def textbook_margin(xs: list[float], masses: list[float]) -> float:
    """Smallest distance (m) by which the centre of mass of the blocks above each block lies inside its top face
    (negative: the tower topples there). Used only to design tasks; outcomes come from pymunk."""
    worst = math.inf
    above_mass, above_moment = 0.0, 0.0
    for j in range(len(xs) - 1, 0, -1):
        above_mass += masses[j]
        above_moment += masses[j] * xs[j]
        margin = _HALF_WIDTH - abs(above_moment / above_mass - xs[j - 1])
        if margin < worst:
            worst = margin
    return worst


def best_reach(xs: list[float], masses: list[float], offsets: tuple[float, ...], left: int, side: int) -> float:
    """The farthest ``side * x`` of the top block that ``left`` placements reach while every placement keeps each
    margin at least ``MARGIN`` (``-inf`` if none does). Used only to design tasks.

    Only shifts toward the goal (or none) are searched: a shift away costs reach that, with each shift capped by
    the new block's own balance, later shifts cannot win back in these short towers. The goal may therefore
    sit a little short of the true best, never beyond it.
    """
    if left == 0:
        return side * xs[-1]
    best = -math.inf
    top, more = xs[-1], [*masses, NEW_MASS]
    for dx in offsets:
        if side * dx < 0:
            continue
        taller = [*xs, top + dx]
        if textbook_margin(taller, more) >= MARGIN:
            reach = side * taller[-1] if left == 1 else best_reach(taller, more, offsets, left - 1, side)
            if reach > best:
                best = reach
    return best


class StabilityWorld:
    """Dynamics: a table and a tower of rigid 0.4 x 0.2 m blocks; new blocks are set down on top, at rest."""

    def __init__(self, task: StabilityTask, physics: Perturbation = NOMINAL) -> None:
        self.task = task
        self.sim = Sim(physics=physics)
        self.sim.segment((-10.0, 0.0), (10.0, 0.0))
        self.blocks = []
        self.fragile: list[bool] = []
        for k, (x, mass, fragile) in enumerate(zip(task.xs, task.masses, task.fragile)):
            self.blocks.append(self.sim.box(x, HEIGHT * (k + 0.5), WIDTH, HEIGHT, mass, fragile=fragile))
            self.fragile.append(fragile)
        self.sim.run(max_seconds=0.5)  # let contacts settle before the agent looks
        self.fallen = False

    @property
    def placed(self) -> int:
        """Blocks the agent has added so far."""
        return len(self.blocks) - len(self.task.xs)

    def reaches(self) -> bool:
        """Whether the top block's centre is at or beyond the goal."""
        return self.task.side * (self.blocks[-1].position.x - self.task.goal) >= 0

    def place(self, offset: float) -> Outcome:
        """Set a new block down on the top block, its centre ``offset`` m from the top block's, and simulate
        until everything rests. A block set down past the top block's edge tips off by itself."""
        top = self.blocks[-1]
        before = [tuple(b.position) for b in self.blocks]
        x, y = top.position.x + offset, top.position.y + HEIGHT + 0.002
        self.blocks.append(self.sim.box(x, y, WIDTH, HEIGHT, NEW_MASS))
        self.fragile.append(False)
        before.append((x, y))
        broken_before = len(self.sim.broken)
        self.sim.run(max_seconds=3.0, min_seconds=0.5)
        moved = [b for b, (x0, y0) in zip(self.blocks, before) if np.hypot(b.position.x - x0, b.position.y - y0) > 0.1]
        tipped = [b for b in self.blocks[:-1] if abs(b.angle) > 0.2]
        events: dict[str, float] = {}
        if moved or tipped:
            self.fallen = True
            tower = {id(b) for b in moved if b is not self.blocks[-1]} | {id(b) for b in tipped}
            if tower:
                events["tower_fell"] = float(len(tower))
            dropped = sum(1 for b, (_, y0) in zip(self.blocks, before) if b.position.y < y0 - HEIGHT / 2)
            if dropped:
                events["object_dropped"] = float(dropped)
        if len(self.sim.broken) > broken_before:
            events["object_broken"] = float(len(self.sim.broken) - broken_before)
        done = self.fallen or self.placed == self.task.n_place
        success = done and not self.fallen and self.reaches()
        return Outcome(events, done=done, success=success, facts={"moved": len(moved)})


class StabilityEnv(PhysicsEnv):
    """Add ``n_place`` blocks to a tower, one at a time, so that its top reaches out to a goal and it still stands.

    Blocks are 0.4 m wide and 0.2 m tall. A tower stands while, at every level, the centre of mass of everything
    above lies over the block below. The goal (a mark the top block's centre must reach) lies out to one side, as
    far as the best placements can lean the tower: shifting too little falls short, shifting too far topples it.

    - Actions: ``Discrete(n_offsets)``: set the next block down on the top block with its centre shifted by one
      of ``n_offsets`` evenly spaced amounts from -0.3 m (left) to +0.3 m (right). Every action is always valid.
    - Observation (``Box(-1, 1, (2 + 3 * (prebuilt + n_place),))``): decisions left (fraction), goal x (m / 1.5),
      then per block slot, bottom first: present, centre x (m / 1.5), mass (kg / 2).
    - Reward: 1 when the last block is placed, the tower stands and its top reaches the goal (``success``).
    - Episode: ``n_place`` decisions; it ends early when anything falls (failure).
    - Events: ``tower_fell`` (tower blocks that moved more than 0.1 m or tipped), ``object_dropped`` (blocks that
      fell more than half a block height), ``object_broken`` (glass blocks that broke).
    - Split: ``eval`` draws the tower's lean (each block's offset) from bands disjoint from ``train``'s.
    - Shift: ``gravity`` and ``friction`` multiply g and every contact's friction coefficient, unannounced
      (the text keeps the nominal values); the default 1 leaves the world unchanged.

    Version history: v0, first version.
    """

    world_type = StabilityWorld
    event_names = ("tower_fell", "object_dropped", "object_broken")

    def __init__(
        self,
        prebuilt: int = 2,
        n_place: int = 1,
        n_offsets: int = 9,
        vary_mass: bool = False,
        split: str = "train",
        gravity: float = 1.0,
        friction: float = 1.0,
    ) -> None:
        self.prebuilt = check_int("prebuilt", prebuilt, 1, 5)
        self.n_place = check_int("n_place", n_place, 1, 4)
        self.n_offsets = check_int("n_offsets", n_offsets, 3, 11)
        self.vary_mass = check_bool("vary_mass", vary_mass)
        self.offsets = tuple(float(x) for x in np.linspace(-MAX_OFFSET, MAX_OFFSET, self.n_offsets))
        # text and observation parts that depend only on the arguments
        self._wheres = [
            "set the next block down on the top block, "
            + (
                "right above its centre"
                if abs(dx) < 1e-9
                else f"{abs(dx):.2f} m {'left' if dx < 0 else 'right'} of its centre"
            )
            + " (at x = "
            for dx in self.offsets
        ]
        self._goals = [
            f"Goal: set down {plural(left, 'more wooden block')} ({NEW_MASS:.1f} kg each) on top, one at a time, so "
            "that after the last one the tower still stands and its top block's centre is at x ="
            for left in range(self.n_place + 1)
        ]
        self._empty_slots = [-1.0, 0.0, 0.0] * (self.prebuilt + self.n_place)  # blocks not placed (yet)
        super().__init__(
            split,
            n_actions=self.n_offsets,
            obs_size=2 + 3 * (self.prebuilt + self.n_place),
            max_decisions=self.n_place,
            gravity=gravity,
            friction=friction,
        )

    # task ----------------------------------------------------------------------------------------------------
    def _sample_task(self, rng: np.random.Generator) -> StabilityTask:
        for _ in range(1000):
            xs = [0.0]
            for _ in range(self.prebuilt - 1):
                xs.append(xs[-1] + coin(rng) * band_uniform(rng, 0.0, 0.16, self.split))
            masses = [uniform(rng, 0.5, 2.0) if self.vary_mass else 1.0 for _ in xs]
            if textbook_margin(xs, masses) < MARGIN:
                continue
            side = coin(rng)
            reach = best_reach(xs, masses, self.offsets, self.n_place, side)
            if reach - side * xs[-1] < 0.05:
                continue  # the goal must call for leaning out
            fragile = tuple([rng.random() < 0.3 for _ in xs])
            goal = side * (reach - SLACK)
            return StabilityTask(tuple(xs), tuple(masses), fragile, goal, side, self.n_place)
        raise RuntimeError("could not design a stability task")  # unreachable for the accepted arguments

    # dynamics ------------------------------------------------------------------------------------------------
    def simulate(self, world: StabilityWorld, action: int) -> Outcome:
        return world.place(self.offsets[action])

    # numeric view --------------------------------------------------------------------------------------------
    def _observe(self) -> list[float]:
        w = self._world
        # the text view reuses these positions: reset and step observe, then describe
        xs = self._xs = [body.position.x for body in w.blocks]
        masses = w.task.masses  # the bodies' masses, then NEW_MASS for every block placed
        obs = [self.decisions_left / self.max_decisions, w.task.goal / 1.5]
        for k, x in enumerate(xs):
            obs += (1.0, x / 1.5, (masses[k] if k < len(masses) else NEW_MASS) / 2)
        return obs + self._empty_slots[3 * len(xs) :]

    # text view -----------------------------------------------------------------------------------------------
    def _begin(self) -> None:
        t = self._world.task
        self._goal_said = f" {m(t.goal, True)} or further {'right' if t.side > 0 else 'left'}."

    def describe(self) -> str:
        w = self._world
        masses = w.task.masses
        rows = []
        below = 0.0
        for k, (x, fragile) in enumerate(zip(self._xs, w.fragile)):
            mass = masses[k] if k < len(masses) else NEW_MASS
            shift = "on the table" if k == 0 else f"{x - below:+.2f} m from the one below"
            rows.append(f"block {k + 1} ({material(fragile)}, {mass:.1f} kg) at x = {x:+.2f} m, {shift}")
            below = x
        return (
            f"A tower of {plural(len(rows), 'block')}{_TOWER_SAID}{'; '.join(rows)}. "
            f"{self._goals[self.decisions_left]}{self._goal_said}"
        )

    def action_texts(self) -> list[str]:
        top = self._xs[-1]
        return [f"{where}{top + dx:+.2f} m)" for where, dx in zip(self._wheres, self.offsets)]

    def narrate(self, outcome: Outcome) -> str:
        said = []
        if outcome.events.get("tower_fell"):
            said.append(f"The tower fell: {plural(int(outcome.events['tower_fell']), 'block')} tumbled.")
        elif outcome.facts.get("moved"):
            said.append("The new block tipped off the tower.")
        if outcome.events.get("object_broken"):
            said.append("A glass block broke.")
        if outcome.facts.get("masked") is None and not said:
            said.append("The tower stood.")
            if outcome.done:
                reached = "reaches" if self._world.reaches() else "falls short of"
                said.append(f"Its top block, at x = {m(self._xs[-1], True)}, {reached} the goal.")
        return " ".join(said)
