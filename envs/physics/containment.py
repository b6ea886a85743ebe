"""Containment: let go of a ball so that it ends up inside a container, judging which containers can hold it.

After Hespos & Baillargeon (2001a, 2001b, 2006): from 2.5 months infants expect an object to enter a container only
through an opening; from about 7.5 months they also judge, and act on, whether a container is deep enough to hold
an object entirely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

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
)
from upbringing.envs.physics.params import band_uniform, coin, uniform

RELEASES = tuple(0.5 + 0.5 * i for i in range(11))
"""Where the hand can let go of the ball, m."""
RELEASE_Y = 1.6  # height of the ball's centre when let go, m
BASE = 0.4  # every container stands on legs; the top of its bottom is this high, m
WALL = 0.04  # thickness of walls, bottoms and lids, m
LEDGE = 0.02  # what is left of the bottom on each side of a hole that flaws a container, m
MAX_OPENING, MAX_DEPTH = 0.45, 0.5
BALL_MASS = 0.2
BALL_FRICTION = 0.6
GAP = 0.15  # least floor space between two containers' outer sides, m
FLAWS = {
    "opening": ("closed", "narrow"),  # no way in: a lid, or an opening narrower than the ball
    "all": ("closed", "narrow", "shallow", "holed"),  # also: too shallow to hold it all, or a hole it falls through
}
"""The ways a container can fail to hold the ball, by the ``flaws`` argument."""
_SPEEDS = (0.5, 1.5)  # the hand's speed when it moves, m/s
_AIM = 0.05  # the intended release lands at least this far inside the opening's edges (design margin, m)


class Container(NamedTuple):
    """A container standing on legs: an open box (unless it has a lid), its bottom ``BASE`` m above the floor.

    Attributes:
        x: Centre, m.
        opening: Inside width between the walls, m.
        depth: Inside depth, from the top of the bottom to the rim, m.
        lid: Whether a lid closes the top.
        hole: Width of a hole in the middle of the bottom (0: none), m.
    """

    x: float
    opening: float
    depth: float
    lid: bool = False
    hole: float = 0.0

    @property
    def rim(self) -> float:
        """Height of the rim (the top of the walls), m."""
        return BASE + self.depth

    @property
    def outer(self) -> float:
        """Half the outside width, m."""
        return self.opening / 2 + WALL


@dataclass(frozen=True)
class ContainmentTask:
    """One containment task.

    Attributes:
        ball: Diameter of the ball, m.
        speed: The hand's horizontal speed (the ball keeps it when let go), m/s; positive to the right.
        containers: The containers, left to right; exactly one of them can hold the ball.
        drops: How many balls the agent may let go of.
    """

    ball: float
    speed: float
    containers: tuple[Container, ...]
    drops: int


def landing_x(release: float, speed: float, height: float, gravity: float = G) -> float:
    """Where a ball let go at ``release`` (m), moving at ``speed`` (m/s), is when its centre has fallen to
    ``height`` (m): x = release + speed * sqrt(2 (RELEASE_Y - height) / g). Used only to design tasks."""
    return release + speed * math.sqrt(2 * (RELEASE_Y - height) / gravity)


def holds(container: Container, ball: float) -> bool:
    """Whether ``container`` can hold a ball ``ball`` m across entirely: open, wide and deep enough, and any hole
    in its bottom narrower than the ball. The textbook rule, used only to design tasks; outcomes come from pymunk."""
    return not container.lid and container.opening > ball and container.depth > ball and container.hole < ball


class ContainmentWorld:
    """Dynamics: containers on legs above a floor, and balls let go from a hand above them."""

    def __init__(self, task: ContainmentTask, physics: Perturbation = NOMINAL) -> None:
        self.task = task
        # A ball falls about 1.1 m and hits 4 cm walls and bottoms at up to 5 m/s: in steps of 1/180 s it moves under
        # 3 cm a step, so it neither sinks into a bottom nor slips between the edges of a hole smaller than itself.
        self.sim = Sim(physics=physics, substeps=3)
        self.sim.segment((-2.0, 0.0), (8.0, 0.0))
        legs = (BASE - WALL) / 2
        for c in task.containers:
            inner, outer = c.opening / 2, c.outer
            for side in (-1, 1):
                wall = c.x + side * (inner + WALL / 2)
                self.sim.static_box(wall, BASE + c.depth / 2, WALL, c.depth)  # wall
                self.sim.static_box(wall, legs, WALL, 2 * legs)  # leg under it
            if c.hole > 0:
                piece = outer - c.hole / 2
                for side in (-1, 1):
                    self.sim.static_box(c.x + side * (outer - piece / 2), BASE - WALL / 2, piece, WALL)
            else:
                self.sim.static_box(c.x, BASE - WALL / 2, 2 * outer, WALL)
            if c.lid:
                self.sim.static_box(c.x, c.rim + WALL / 2, 2 * outer, WALL)
        self.balls: list[pymunk.Body] = []  # balls let go so far that are still in sight (not rolled away on the floor)
        self.last: tuple[float, float] | None = None  # where the last ball ended, m (None before the first)

    def on_floor(self, body: pymunk.Body) -> bool:
        """Whether ``body`` (a ball) is down on the floor."""
        return body.position.y < BASE / 2

    def inside(self, body: pymunk.Body, c: Container) -> bool:
        """Whether the ball ``body`` lies entirely inside ``c``: between its walls, above its bottom (resting on
        the edges of a small hole counts) and below its rim."""
        r = self.task.ball / 2
        x, y = body.position
        return abs(x - c.x) <= c.opening / 2 - r + 0.01 and y > BASE and y + r <= c.rim + 0.005

    def under(self, body: pymunk.Body) -> int | None:
        """The container whose legs ``body`` lies between, on the floor (it fell through that container's bottom)."""
        x = body.position.x
        for k, c in enumerate(self.task.containers):
            if abs(x - c.x) < c.opening / 2:
                return k
        return None

    def drop(self, release: float) -> Outcome:
        """Let go of a new ball at ``release`` (m) and simulate until it rests inside or outside a container, or
        reaches the floor (where it rolls away out of reach)."""
        task = self.task
        ball = self.sim.ball(release, RELEASE_Y, task.ball / 2, BALL_MASS, friction=BALL_FRICTION)
        ball.velocity = (task.speed, 0.0)
        self.balls.append(ball)
        self.sim.run(max_seconds=3.0, min_seconds=0.8, until=lambda: self.on_floor(ball))
        self.last = (ball.position.x, ball.position.y)
        events: dict[str, float] = {}
        facts: dict[str, object] = {}
        if self.on_floor(ball):
            events["object_dropped"] = 1.0
            spilled = self.under(ball)
            if spilled is not None:
                events["object_spilled"] = 1.0
                facts["through"] = spilled
            self.sim.remove(ball)
            self.balls.remove(ball)
        else:
            inside = next((k for k, c in enumerate(task.containers) if self.inside(ball, c)), None)
            if inside is not None:
                events["object_contained"] = 1.0
                facts["inside"] = inside
            else:
                x = ball.position.x
                facts["near"] = min(range(len(task.containers)), key=lambda k: abs(x - task.containers[k].x))
        success = "object_contained" in events
        return Outcome(events, done=success, success=success, facts=facts)


class ContainmentEnv(PhysicsEnv):
    """Let go of a ball above a row of containers so that it ends up entirely inside one of them.

    A hand holds a ball (0.16 to 0.24 m across) 1.6 m above the floor and can let go of it at 11 places, 0.5 m
    apart. Below stand ``n_containers`` containers on legs, their bottoms 0.4 m above the floor. Exactly one of them
    can hold the ball; each of the others has a flaw (``flaws``): a lid, or an opening narrower than the ball
    (``"opening"``), and with ``"all"`` also walls lower than the ball (it would stick out above the rim) or a hole
    in the bottom wider than the ball (it falls through); the one that holds it may then have a hole smaller than
    the ball. With ``moving=True`` the hand moves sideways at 0.5 to 1.5 m/s and the ball keeps that speed when let
    go, so the agent must let go early: a ball falling from 1.6 m to a rim 0.8 m high moves on for 0.4 s.

    - Actions: ``Discrete(11)``: let go at x = 0.5, 1.0, ..., 5.5 m. Every action is always valid.
    - Observation (``Box(-1, 1, (6 + 6 * n_containers,))``): drops left (fraction), whether a ball from an earlier
      drop is in sight and where it rests (x / 3 - 1, y / 1.6), the hand's speed (m/s / 1.5), the ball's diameter
      (m / 0.24), then per container, left to right: present, centre (x / 3 - 1), opening (m / 0.45), depth
      (m / 0.5), lid (1 or 0), hole (m / 0.45).
    - Reward: 1 when a ball comes to rest entirely inside a container (``success``), else 0.
    - Episode: up to ``drops`` decisions, each with a new ball; it ends at the first success. A ball that reaches
      the floor rolls away out of reach; one that rests elsewhere (on a lid, stuck in a narrow opening, sticking out
      of a shallow container) stays where it is.
    - Events: ``object_contained`` (the ball rests entirely inside a container), ``object_spilled`` (it went into a
      container and out through a hole in its bottom), ``object_dropped`` (it reached the floor).
    - Split: ``eval`` draws the ball's size, where the good container stands relative to the release points, and
      the hand's speed from bands disjoint from ``train``'s.
    - Shift: ``gravity`` and ``friction`` multiply g and every contact's friction coefficient, unannounced
      (the text keeps the nominal values); the default 1 leaves the world unchanged. Under changed gravity a
      moving ball lands elsewhere.

    Version history: v0, first version.
    """

    world_type = ContainmentWorld
    event_names = ("object_contained", "object_spilled", "object_dropped")

    def __init__(
        self,
        n_containers: int = 1,
        flaws: str = "opening",
        moving: bool = False,
        drops: int = 2,
        split: str = "train",
        gravity: float = 1.0,
        friction: float = 1.0,
    ) -> None:
        self.n_containers = check_int("n_containers", n_containers, 1, 4)
        if flaws not in FLAWS:
            raise ValueError(f"flaws must be one of {', '.join(map(repr, FLAWS))}, got {flaws!r}")
        self.flaws = flaws
        self.moving = check_bool("moving", moving)
        self.drops = check_int("drops", drops, 1, 3)
        super().__init__(
            split,
            n_actions=len(RELEASES),
            obs_size=6 + 6 * self.n_containers,
            max_decisions=self.drops,
            gravity=gravity,
            friction=friction,
        )
        # text that depends only on the arguments
        self._action_texts = [f"let go of the ball at x = {x:.1f} m" for x in RELEASES]
        self._empty_slots = [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0] * self.n_containers

    # task ----------------------------------------------------------------------------------------------------
    def _flaw(self, rng: np.random.Generator, ball: float) -> tuple[float, float, bool, float]:
        """``(opening, depth, lid, hole)`` of a container that cannot hold a ball ``ball`` m across."""
        kinds = FLAWS[self.flaws]
        kind = kinds[int(rng.random() * len(kinds))]
        if kind == "closed":
            return uniform(rng, ball + 0.08, MAX_OPENING), uniform(rng, ball + 0.05, MAX_DEPTH), True, 0.0
        if kind == "narrow":
            return uniform(rng, 0.5 * ball, ball - 0.03), uniform(rng, ball + 0.05, MAX_DEPTH), False, 0.0
        if kind == "shallow":
            return uniform(rng, ball + 0.08, MAX_OPENING), uniform(rng, 0.4 * ball, ball - 0.04), False, 0.0
        hole = uniform(rng, ball + 0.03, MAX_OPENING - 2 * LEDGE)
        return hole + 2 * LEDGE, uniform(rng, ball + 0.05, MAX_DEPTH), False, hole

    def _sample_task(self, rng: np.random.Generator) -> ContainmentTask:
        split = self.split
        for _ in range(1000):
            ball = band_uniform(rng, 0.16, 0.24, split)
            speed = coin(rng) * band_uniform(rng, *_SPEEDS, split) if self.moving else 0.0
            # the container that holds the ball, placed so that one release drops it well inside the opening
            opening, depth = uniform(rng, ball + 0.08, MAX_OPENING), uniform(rng, ball + 0.05, MAX_DEPTH)
            hole = uniform(rng, 0.04, ball - 0.05) if self.flaws == "all" and rng.random() < 0.3 else 0.0
            aim = min(0.08, opening / 2 - _AIM)
            release = RELEASES[int(rng.random() * len(RELEASES))]
            x = landing_x(release, speed, BASE + depth) + band_uniform(rng, -aim, aim, split)
            if not 0.3 + opening / 2 < x < 5.7 - opening / 2:
                continue
            containers = [Container(x, opening, depth, hole=hole)]
            taken = [(x, opening / 2 + WALL)]  # centre and half the outside width of each container placed
            for _ in range(self.n_containers - 1):
                opening, depth, lid, hole = self._flaw(rng, ball)
                half = opening / 2 + WALL
                for _ in range(100):
                    x = uniform(rng, 0.3 + half, 5.7 - half)
                    if all(abs(x - there) > half + other + GAP for there, other in taken):
                        break
                else:
                    break
                containers.append(Container(x, opening, depth, lid, hole))
                taken.append((x, half))
            if len(containers) == self.n_containers:
                containers.sort(key=lambda c: c.x)
                return ContainmentTask(ball, speed, tuple(containers), self.drops)
        raise RuntimeError("could not design a containment task")  # unreachable for the accepted arguments

    # dynamics ------------------------------------------------------------------------------------------------
    def simulate(self, world: ContainmentWorld, action: int) -> Outcome:
        return world.drop(RELEASES[action])

    # numeric view --------------------------------------------------------------------------------------------
    def _observe(self) -> list[float]:
        w = self._world
        obs = [(self.max_decisions - self._decisions) / self.max_decisions]
        if w.balls:
            x, y = w.balls[-1].position
            obs += (1.0, x / 3 - 1, y / RELEASE_Y)
        else:
            obs += (-1.0, 0.0, 0.0)
        return obs + self._fixed_obs

    # per episode: the views' fixed parts -----------------------------------------------------------------------
    def _begin(self) -> None:
        t = self._world.task
        # the observation's fixed part: the hand, the ball and the containers
        fixed = [t.speed / 1.5, t.ball / 0.24]
        for c in t.containers:
            fixed += (
                1.0,
                c.x / 3 - 1,
                c.opening / MAX_OPENING,
                c.depth / MAX_DEPTH,
                float(c.lid),
                c.hole / MAX_OPENING,
            )
        self._fixed_obs = fixed + self._empty_slots[6 * len(t.containers) :]
        hand = (
            f"The hand moves {'right' if t.speed > 0 else 'left'} at {abs(t.speed):.1f} m/s, and the ball keeps that "
            "speed when let go."
            if t.speed
            else "The hand is still."
        )
        boxes = []
        for i, c in enumerate(t.containers):
            said = (
                f"a {COLOURS[i]} container at x = {c.x:.2f} m, {c.opening:.2f} m wide inside and {c.depth:.2f} m deep, "
                + ("closed by a lid" if c.lid else "open at the top")
            )
            if c.hole:
                said += f", with a hole {c.hole:.2f} m wide in the middle of its bottom"
            boxes.append(said)
        self._scene = (
            f"A hand holds a soft ball {t.ball:.2f} m across, its centre {RELEASE_Y:.1f} m above the floor, and can "
            f"let go of it at x = 0.5, 1.0, ..., 5.5 m. {hand} Containers stand on legs, the tops of their bottoms "
            f"{BASE:.1f} m above the floor, with walls {WALL:.2f} m thick: {'; '.join(boxes)}. A ball that reaches the "
            "floor rolls away. Goal: let go of a ball so that it comes to rest entirely inside a container (all of it "
            "below the rim)."
        )

    # text view -----------------------------------------------------------------------------------------------
    def describe(self) -> str:
        w = self._world
        text = self._scene
        if w.balls:
            x, y = w.balls[-1].position
            text += f" The last ball rests at x = {x:.2f} m, {y:.2f} m up (its centre)."
        return f"{text} Balls left: {self.decisions_left} of {self.drops}."

    def action_texts(self) -> list[str]:
        return self._action_texts.copy()  # the same for every task; a copy, so callers may keep or change theirs

    def narrate(self, outcome: Outcome) -> str:
        if outcome.facts.get("masked") is not None:
            return ""
        events, facts = outcome.events, outcome.facts
        if "inside" in facts:
            return f"The ball came to rest inside the {COLOURS[facts['inside']]} container."
        if "through" in facts:
            return (
                f"The ball went into the {COLOURS[facts['through']]} container, fell through the hole in its bottom "
                "and rolled away on the floor."
            )
        if events.get("object_dropped"):
            return "The ball fell to the floor and rolled away."
        if "near" not in facts:
            return ""
        c = self._world.task.containers[facts["near"]]
        x, y = self._world.last
        colour = COLOURS[facts["near"]]
        if y > c.rim and abs(x - c.x) < c.outer:
            if c.lid:
                where = f"on the lid of the {colour} container"
            elif c.opening < self._world.task.ball:
                where = f"in the {colour} container's opening, too narrow to let it in"
            else:
                where = f"on the rim of the {colour} container"
            return f"The ball came to rest {where}, {y:.2f} m up (its centre)."
        if abs(x - c.x) < c.opening / 2:
            return f"The ball came to rest in the {colour} container but sticks out above its rim."
        return f"The ball came to rest at x = {x:.2f} m, {y:.2f} m up (its centre)."
