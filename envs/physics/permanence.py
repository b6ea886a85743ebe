"""Object permanence: a block slides behind a screen; it is still there, so reach where it must have stopped.

After Aguiar & Baillargeon (1999) and Baillargeon (1987): by 2.5-3.5 months infants expect an object to go on
existing, and moving along its path, while it is hidden behind a screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymunk
from upbringing.envs.arguments import check_int
from upbringing.envs.physics.base import (
    COLOURS,
    NOMINAL,
    G,
    Outcome,
    Perturbation,
    PhysicsEnv,
    Sim,
    m,
    plural,
)
from upbringing.envs.physics.params import band_uniform

OPEN = 2.5  # m of open table on each side of the screen
SIZE = 0.3
FRICTION = 0.3  # block on table (the table's friction is 1; pymunk multiplies them)
ELASTICITY = 0.9  # each block; blocks bounce off each other with restitution 0.81
DECEL = FRICTION * G
MAX_WIDTH = 6
MAX_LENGTH = 2 * OPEN + MAX_WIDTH


@dataclass(frozen=True)
class PermanenceTask:
    """One object-permanence task. The table spans ``0..2 * OPEN + screen_width`` m; the screen covers
    ``OPEN..OPEN + screen_width``.

    Attributes:
        screen_width: Width of the screen, m (one reachable place per metre behind it).
        starts: ``(x, vx)`` of each block at the start, m and m/s; the first is the target.
        resting: ``x`` of each distractor block resting in plain view.
    """

    screen_width: int
    starts: tuple[tuple[float, float], ...]
    resting: tuple[float, ...]

    @property
    def screen(self) -> tuple[float, float]:
        """Left and right edges of the screen, m."""
        return OPEN, OPEN + self.screen_width

    @property
    def length(self) -> float:
        """Table length, m."""
        return 2 * OPEN + self.screen_width

    def places(self) -> list[tuple[float, float]]:
        """The places the agent can reach into: left of the screen, each metre behind it, right of it."""
        lo, hi = self.screen
        return [(0.0, lo), *[(lo + i, lo + i + 1) for i in range(self.screen_width)], (hi, self.length)]


class PermanenceWorld:
    """Dynamics: blocks slide on a rimmed table and stop by friction; an opaque screen hides part of the table.

    The whole scene is simulated when the world is built (until every block rests); what an onlooker saw is
    recorded on the way: for each block, where and how fast it was when it last went out of sight.
    """

    def __init__(self, task: PermanenceTask, physics: Perturbation = NOMINAL) -> None:
        self.task = task
        self.sim = Sim(physics=physics)
        length = task.length
        self.sim.segment((-1.0, 0.0), (length + 1.0, 0.0))
        for x in (-0.1, length + 0.1):
            self.sim.static_box(x, 0.25, 0.2, 0.5)  # rims: nothing leaves the table
        y = SIZE / 2
        xs = [x for x, _ in task.starts] + list(task.resting)
        self.blocks = [
            self.sim.box(x, y, SIZE, SIZE, 1.0, friction=FRICTION, elasticity=ELASTICITY, rotates=False) for x in xs
        ]
        for body, (_, vx) in zip(self.blocks, task.starts):
            body.velocity = (vx, 0.0)
        lo, hi = task.screen
        self._hidden_range = (lo + SIZE / 2, hi - SIZE / 2)
        # last sighting of each block before it went out of sight: (x, vx, time) or None while visible
        self.vanished: list[tuple[float, float, float] | None] = [None] * len(self.blocks)
        self._was_hidden = [self.hidden(b) for b in self.blocks]
        self.duration = self.sim.run(max_seconds=8.0, watch=self._watch)

    def hidden(self, body: pymunk.Body) -> bool:
        """Whether ``body`` is entirely behind the screen."""
        x = body.position.x
        return self._hidden_range[0] <= x <= self._hidden_range[1]

    def _watch(self, t: float) -> None:
        lo, hi = self._hidden_range
        for i, body in enumerate(self.blocks):
            x = body.position.x
            hidden = lo <= x <= hi
            if hidden != self._was_hidden[i]:
                # the moment it slips out of sight (or comes back into view)
                self.vanished[i] = (x, body.velocity.x, t) if hidden else None
                self._was_hidden[i] = hidden

    def reach(self, place: int) -> Outcome:
        """Reach into ``place`` (see :meth:`PermanenceTask.places`): success if the target block is there."""
        lo, hi = self.task.places()[place]
        found = lo <= self.blocks[0].position.x < hi
        return Outcome({"object_found": 1.0} if found else {}, done=True, success=found, facts={"place": place})


class ObjectPermanenceEnv(PhysicsEnv):
    """A red block slides behind an opaque screen; once everything is still, reach for it.

    The table is rimmed (nothing falls off) and friction slows sliding blocks by 2.9 m/s every second, so where
    a hidden block stopped follows from where and how fast it went out of sight. Other blocks may slide behind
    the screen too (``n_objects``) and bump into it; ``distractors`` blocks rest in plain view.

    - Actions: ``Discrete(screen_width + 2)``: reach to the left of the screen (0), behind the screen at metre
      ``i`` (``1..screen_width``), or to the right of the screen (last). Every action is always valid.
    - Observation (``Box(-1, 1, (3 + 6 * (n_objects + distractors),))``): screen edges, table length, then per
      block (the target first): visible now, last seen x, last seen velocity, start x, start velocity, time
      since it went out of sight (scaled: x / 11 m, v / 6 m/s, t / 8 s).
    - Reward: 1 if the reach finds the red block (``success``); one decision per episode.
    - Events: ``object_found``.
    - Split: ``eval`` draws where the red block stops (within its metre) and where it starts from bands
      disjoint from ``train``'s.
    - Shift: ``gravity`` and ``friction`` multiply g and every contact's friction coefficient, unannounced
      (the text keeps the nominal values); the default 1 leaves the world unchanged.

    Version history: v0, first version.
    """

    world_type = PermanenceWorld
    event_names = ("object_found",)

    def __init__(
        self,
        screen_width: int = 3,
        n_objects: int = 1,
        distractors: int = 0,
        split: str = "train",
        gravity: float = 1.0,
        friction: float = 1.0,
    ) -> None:
        self.screen_width = check_int("screen_width", screen_width, 2, MAX_WIDTH)
        self.n_objects = check_int("n_objects", n_objects, 1, 3)
        self.distractors = check_int("distractors", distractors, 0, 3)
        # the places to reach into depend only on the screen's width, so their texts are the same in every task
        places = PermanenceTask(self.screen_width, (), ()).places()
        self._action_texts = [f"reach to the left of the screen (x = {m(places[0][0])} to {m(places[0][1])})"]
        self._action_texts += [f"reach behind the screen at x = {m(a)} to {m(b)}" for a, b in places[1:-1]]
        self._action_texts.append(f"reach to the right of the screen (x = {m(places[-1][0])} to {m(places[-1][1])})")
        super().__init__(
            split,
            n_actions=self.screen_width + 2,
            obs_size=3 + 6 * (self.n_objects + self.distractors),
            max_decisions=1,
            gravity=gravity,
            friction=friction,
        )

    # task ----------------------------------------------------------------------------------------------------
    def _sample_task(self, rng: np.random.Generator) -> PermanenceTask:
        width = self.screen_width
        lo, hi = OPEN, OPEN + width

        def launch(x0: float, stop: float) -> tuple[float, float]:
            # textbook speed that would make a lone block stop at ``stop``; pymunk decides where it really stops
            return x0, float(np.sign(stop - x0) * np.sqrt(2 * DECEL * abs(stop - x0)))

        x0 = band_uniform(rng, 0.9, 1.5, self.split)
        if rng.random() < 0.8:
            stop = lo + int(rng.integers(width)) + band_uniform(rng, 0.2, 0.8, self.split)
        else:
            stop = hi + band_uniform(rng, 0.4, OPEN - 0.4, self.split)
        starts = [launch(x0, stop)]
        # Other blocks are launched so that, alone, they would slide past the target's stopping point: they are
        # bound to bump into it behind the screen, so the reach needs more than one block's path.
        if self.n_objects >= 2:  # one from the right
            starts.append(launch(hi + float(rng.uniform(1.0, 2.0)), max(stop - float(rng.uniform(0.5, 1.5)), 0.3)))
        if self.n_objects >= 3:  # one following the target from behind, faster, and bound to catch it
            follow = min(stop + float(rng.uniform(1.5, 2.5)), hi + OPEN - 0.3)
            starts.append(launch(float(rng.uniform(0.3, x0 - 0.45)), follow))
        resting: list[float] = []
        taken = [x for x, _ in starts]
        while len(resting) < self.distractors:
            x = float(rng.uniform(0.3, lo - 0.3) if rng.random() < 0.5 else rng.uniform(hi + 0.3, hi + OPEN - 0.3))
            if all(abs(x - y) >= 0.5 for y in taken):
                resting.append(x)
                taken.append(x)
        return PermanenceTask(width, tuple(starts), tuple(resting))

    # dynamics ------------------------------------------------------------------------------------------------
    def simulate(self, world: PermanenceWorld, action: int) -> Outcome:
        return world.reach(action)

    # numeric view --------------------------------------------------------------------------------------------
    def _observe(self) -> list[float]:
        w, t = self._world, self._world.task
        lo, hi = t.screen
        obs = [lo / MAX_LENGTH, hi / MAX_LENGTH, t.length / MAX_LENGTH]
        starts = [*t.starts, *((x, 0.0) for x in t.resting)]
        for body, (x0, v0), seen in zip(w.blocks, starts, w.vanished):
            if seen is None:
                obs += [1.0, body.position.x / MAX_LENGTH, body.velocity.x / 6, x0 / MAX_LENGTH, v0 / 6, 0.0]
            else:
                x, vx, when = seen
                obs += [-1.0, x / MAX_LENGTH, vx / 6, x0 / MAX_LENGTH, v0 / 6, (w.duration - when) / 8]
        return obs

    # text view -----------------------------------------------------------------------------------------------
    def _block(self, i: int) -> str:
        return f"{COLOURS[i]} block"

    def describe(self) -> str:
        w, t = self._world, self._world.task
        lo, hi = t.screen
        parts = [
            f"You watched a rimmed table {m(t.length)} long (x = 0 to {m(t.length)}); an opaque screen hides "
            f"x = {m(lo)} to {m(hi)} ({m(t.screen_width)} wide). Friction slows a sliding block "
            f"({m(SIZE)} wide) by {DECEL:.1f} m/s every second, so a block moving at v m/s slides "
            f"v²/{2 * DECEL:.1f} m before it stops. Blocks (1 kg each) bounce off each other with restitution "
            f"{ELASTICITY * ELASTICITY:.2f}."
        ]
        for i, (x0, v0) in enumerate(t.starts):
            name = self._block(i)
            line = f"The {name} started at x = {m(x0)}, sliding {'right' if v0 > 0 else 'left'} at {abs(v0):.1f} m/s."
            seen = w.vanished[i]
            if seen is None:
                line += f" It now rests in plain view at x = {m(w.blocks[i].position.x)}."
            else:
                x, vx, when = seen
                ago = w.duration - when
                line += (
                    f" It went behind the screen at x = {m(x)}, moving {'right' if vx > 0 else 'left'} at "
                    f"{abs(vx):.1f} m/s, {ago:.1f} s ago, and has not come out."
                )
            parts.append(line)
        for j, _ in enumerate(t.resting):
            body = w.blocks[len(t.starts) + j]
            parts.append(f"A {self._block(len(t.starts) + j)} rests in plain view at x = {m(body.position.x)}.")
        parts.append(f"Everything is still now. Reach for the {self._block(0)}: you have {plural(1, 'reach')}.")
        return " ".join(parts)

    def action_texts(self) -> list[str]:
        return self._action_texts.copy()  # the same for every task; a copy, so callers may keep or change theirs

    def narrate(self, outcome: Outcome) -> str:
        x = self._world.blocks[0].position.x
        if outcome.success:
            return f"You found the {self._block(0)} at x = {m(x)}."
        return f"The {self._block(0)} was not there; it was at x = {m(x)}."
