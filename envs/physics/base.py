"""What every intuitive-physics env shares: the pymunk world, the base env, argument checks and text helpers.

Each concept (object permanence, support, containment, collision, stability) is one short module with three parts
kept apart, as the house style asks:

- **dynamics**: a ``*World`` class that builds a pymunk space from a sampled task, applies an action and reports
  what happened (:class:`Outcome`, with ground-truth ``events`` measured in the simulation);
- **text**: the env's ``describe``/``action_texts`` methods render the state in plain language;
- **reward**: :func:`success_reward` (1 for success, else 0).

:class:`PhysicsEnv` is the Gymnasium glue: seeding, task sampling, the decision budget, masked actions and the
info contract (:mod:`upbringing.envs.contract`).

Units are SI throughout (metres, seconds, kilograms); gravity is 9.81 m/s².
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pymunk
from gymnasium import spaces
from upbringing.envs.physics.params import check_scale, check_split

G = 9.81
"""Gravity, m/s²."""
DT = 1.0 / 60.0
"""Simulation step, s: the coarsest step at which pymunk keeps stacks of 0.2 m blocks still (tested)."""
REST_SPEED = 0.02
"""Bodies slower than this (m/s, and rad/s for spin) count as at rest."""
BREAK_DV = 3.5
"""Fragility threshold: a glass object breaks when one contact impulse changes its speed by more than this
(m/s; a fall from 0.6 m or more gives a larger impact)."""
OBS_BOUND = 1.0
"""Observations are scaled into [-1, 1]."""

_INTS = (int, np.integer)  # what step() takes as an action without asking the action space

_FRAGILE = 1  # pymunk collision type of glass objects (their impacts are watched)

COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black")


# -------------------------------------------------------------------------------------------------- dynamics
@dataclass
class Outcome:
    """What one action did to the world, measured in the simulation.

    Attributes:
        events: Ground-truth event magnitudes (only the ones that happened).
        done: The episode is over (task solved, failed for good, or out of decisions).
        success: Whether the task was solved (meaningful when ``done``).
        facts: Plain facts about what happened, for the text view (e.g. ``{"fell": 2}``).
    """

    events: dict[str, float] = field(default_factory=dict)
    done: bool = False
    success: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Perturbation:
    """Changes to the laws of a world, for evaluating how a policy copes when physics shifts (shift suites).

    The change is unannounced: observations and the text view keep describing the nominal world (e.g. the stated
    friction), as when a child meets ice for the first time. The defaults leave the world exactly as it was.

    Attributes:
        gravity: Multiplier of the gravitational acceleration (falls hit harder, sliding blocks stop sooner).
        friction: Multiplier of the friction coefficient of every contact.
    """

    gravity: float = 1.0
    friction: float = 1.0


NOMINAL = Perturbation()
"""The world as designed (no perturbation)."""


class Sim:
    """A pymunk space in SI units, plus the bookkeeping every concept needs: glass objects that break on hard
    impacts, and stepping until everything is at rest.

    Args:
        iterations: pymunk solver iterations.
        physics: Perturbed gravity and friction (shift suites); :data:`NOMINAL` by default.
        substeps: pymunk steps per :data:`DT` (worlds with fast, small bodies that would otherwise sink into
            thin parts on impact).

    Attributes:
        space: The pymunk space (gravity -9.81 m/s² unless perturbed).
        broken: Bodies of glass objects that broke so far.
        steps: pymunk steps taken so far.
        dt: The length of one pymunk step, s.
    """

    def __init__(self, iterations: int = 10, physics: Perturbation = NOMINAL, substeps: int = 1) -> None:
        self.dt = DT / substeps
        self._substeps = substeps
        self.space = pymunk.Space()
        self.space.gravity = (0.0, -G * physics.gravity)
        # pymunk multiplies the coefficients of the two shapes in contact, so scaling each by sqrt(f) scales every
        # contact's coefficient by f.
        self._friction = float(np.sqrt(physics.friction))
        self.space.iterations = iterations
        # pymunk's default slop (0.1) suits pixel units; in metres it lets 0.2 m blocks sink and creep.
        self.space.collision_slop = 0.005
        self.broken: set[pymunk.Body] = set()
        self.steps = 0
        self._dynamic: list[pymunk.Body] = []
        self._watching = False
        # Per shape, its drawing for scene(): in its body's frame, or the world's for static shapes (they never move).
        # Written where each shape is made, from the sizes at hand: reading them back through pymunk costs more than
        # a short episode's physics.
        self._drawings: dict[pymunk.Shape, dict[str, Any]] = {}

    def _impact(self, arbiter: pymunk.Arbiter, space: pymunk.Space, data: Any) -> None:
        impulse = arbiter.total_impulse.length
        for shape in arbiter.shapes:
            body = shape.body
            assert body is not None  # pymunk only collides shapes attached to bodies
            if shape.collision_type == _FRAGILE and impulse / body.mass > BREAK_DV:
                self.broken.add(body)

    def segment(self, a: tuple[float, float], b: tuple[float, float], friction: float = 1.0) -> pymunk.Segment:
        """Add a static segment (a table top, the floor)."""
        shape = pymunk.Segment(self.space.static_body, a, b, 0.0)
        shape.friction = friction * self._friction
        self.space.add(shape)
        self._draw(shape, "segment", [a, b], static=True)
        return shape

    def static_box(self, x: float, y: float, w: float, h: float, friction: float = 1.0) -> pymunk.Poly:
        """Add a static box centred at ``(x, y)`` (a post, a rim)."""
        hw, hh = w / 2, h / 2
        corners = [(x - hw, y - hh), (x + hw, y - hh), (x + hw, y + hh), (x - hw, y + hh)]
        shape = pymunk.Poly(self.space.static_body, corners)
        shape.friction = friction * self._friction
        self.space.add(shape)
        self._draw(shape, "poly", corners, static=True)
        return shape

    def box(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        mass: float,
        *,
        friction: float = 0.8,
        elasticity: float = 0.0,
        rotates: bool = True,
        fragile: bool = False,
    ) -> pymunk.Body:
        """Add a dynamic box centred at ``(x, y)``; ``rotates=False`` makes a block that slides without tipping."""
        moment = pymunk.moment_for_box(mass, (w, h)) if rotates else float("inf")
        body = pymunk.Body(mass, moment)
        body.position = (x, y)
        shape = pymunk.Poly.create_box(body, (w, h))
        shape.friction = friction * self._friction
        shape.elasticity = elasticity
        if fragile:
            shape.collision_type = _FRAGILE
            if not self._watching:  # watch impacts only in worlds that hold glass (callbacks cost time)
                self.space.on_collision(_FRAGILE, None, post_solve=self._impact)
                self._watching = True
        self.space.add(body, shape)
        self._dynamic.append(body)
        hw, hh = w / 2, h / 2
        self._draw(shape, "poly", [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)], glass=fragile)
        return body

    def ball(
        self, x: float, y: float, radius: float, mass: float, *, friction: float = 0.8, elasticity: float = 0.0
    ) -> pymunk.Body:
        """Add a dynamic ball centred at ``(x, y)``."""
        body = pymunk.Body(mass, pymunk.moment_for_circle(mass, 0.0, radius))
        body.position = (x, y)
        shape = pymunk.Circle(body, radius)
        shape.friction = friction * self._friction
        shape.elasticity = elasticity
        self.space.add(body, shape)
        self._dynamic.append(body)
        self._draw(shape, "circle", [(0.0, 0.0)], radius)
        return body

    def remove(self, *items: Any) -> None:
        """Take bodies or shapes out of the world."""
        for item in items:
            if isinstance(item, pymunk.Body):
                self._dynamic.remove(item)
                self.space.remove(item, *item.shapes)
                for shape in item.shapes:
                    self._drawings.pop(shape, None)
            else:
                self.space.remove(item)
                self._drawings.pop(item, None)

    def scene(self) -> list[dict[str, Any]]:
        """The world's shapes as plain data, for a picture of the scene (people comparing episodes see it).

        One dict per shape: ``kind`` (``poly``, ``circle`` or ``segment``), ``points`` in metres in the world frame
        (a polygon's corners, a circle's centre, a segment's ends; to the millimetre), ``radius``, and whether it is
        ``static`` (floor, table, posts, rims), ``glass`` and ``broken``.
        """
        out: list[dict[str, Any]] = []
        for shape, drawing in self._drawings.items():
            if drawing["static"]:
                out.append(drawing)
                continue
            body = shape.body
            assert body is not None  # only static shapes are drawn without a body of their own
            (x, y), angle = body.position, body.angle
            c, s = math.cos(angle), math.sin(angle)
            points = [[round(x + c * px - s * py, 3), round(y + s * px + c * py, 3)] for px, py in drawing["points"]]
            out.append({**drawing, "points": points, "broken": body in self.broken})
        return out

    def _draw(
        self, shape: pymunk.Shape, kind: str, points: list[tuple[float, float]], radius: float = 0.0, **flags: bool
    ) -> None:
        static = flags.get("static", False)
        self._drawings[shape] = {
            "kind": kind,
            "points": [[round(px, 3), round(py, 3)] if static else [px, py] for px, py in points],
            "radius": round(radius, 3),
            "static": static,
            "glass": flags.get("glass", False),
            "broken": False,
        }

    def at_rest(self) -> bool:
        """Whether every dynamic body is (nearly) still."""
        for body in self._dynamic:
            vx, vy = body.velocity
            if vx * vx + vy * vy > REST_SPEED * REST_SPEED or abs(body.angular_velocity) > 2 * REST_SPEED:
                return False
        return True

    def run(
        self, max_seconds: float, min_seconds: float = 0.1, watch: Any = None, until: Callable[[], bool] | None = None
    ) -> float:
        """Step until everything rests (checked every 0.1 s after ``min_seconds``) or ``max_seconds`` pass.

        Args:
            max_seconds: Hard limit on simulated time.
            min_seconds: Never stop before this (a tower on the edge starts tipping from rest).
            watch: Optional callable ``watch(t)`` called after every step (e.g. to record what is visible).
            until: Optional callable, checked with the rest test: stop as soon as it returns true (the outcome
                is settled although something still moves, e.g. a ball rolling away on the floor).

        Returns:
            The simulated time, in seconds.
        """
        step, dt, every = self.space.step, self.dt, 6 * self._substeps
        n_max, n_min = round(max_seconds / dt), round(min_seconds / dt)
        n = 0
        while n < n_max:
            step(dt)
            n += 1
            if watch is not None:
                watch(n * dt)
            if n >= n_min and n % every == 0 and (self.at_rest() or (until is not None and until())):
                break
        self.steps += n
        return n * dt


# ------------------------------------------------------------------------------------------------------ reward
def success_reward(outcome: Outcome) -> float:
    """The reward of every physics env: 1 when an action completes the task, 0 otherwise."""
    return 1.0 if outcome.done and outcome.success else 0.0


# -------------------------------------------------------------------------------------------------------- text
def m(x: float, signed: bool = False) -> str:
    """A length or position in metres: ``2.4 m`` (``+0.12 m`` when ``signed``)."""
    return f"{x:+.2f} m" if signed else f"{x:.1f} m"


def plural(n: int, word: str) -> str:
    """``1 block``, ``3 blocks``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def material(fragile: bool) -> str:
    """``glass`` or ``wooden``: glass objects break on hard impacts (event ``object_broken``)."""
    return "glass" if fragile else "wooden"


# --------------------------------------------------------------------------------------------------------- env
class PhysicsEnv(gym.Env):
    """Base of the intuitive-physics envs: a short episode of 1-6 decisions in a pymunk world.

    Subclasses set :attr:`event_names` and :attr:`world_type`, build their spaces through ``super().__init__``
    and implement the hooks ``_sample_task`` (a task from ``self.np_random`` for ``self.split``), ``simulate``
    (dynamics: apply an action to a world), ``_observe``, ``describe`` and ``action_texts``; ``_valid`` (the
    action mask) defaults to every action valid, and ``_begin`` may precompute an episode's fixed text.

    Masked actions: an action whose mask entry is 0 leaves the world unchanged and uses up one decision; the
    episode ends in failure when decisions run out. Actions outside ``action_space`` raise ``ValueError``.

    Every concept also takes ``gravity`` and ``friction`` (multipliers in [0.25, 4], default 1): an unannounced
    :class:`Perturbation` of its world's physics for shift suites (see :mod:`upbringing.curriculum.evaluation`).

    Attributes:
        info_scene: When true, every info also carries ``scene``, the bodies as they stand (:meth:`Sim.scene`), for
            pictures people judge by. Off by default (it costs a few percent of a step); the feedback loop turns it
            on in the envs whose episodes people may be asked about (``FeedbackLoop.wrap``).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares an instance attribute)
    action_space: spaces.Discrete
    info_scene: bool = False
    event_names: ClassVar[tuple[str, ...]] = ()
    world_type: ClassVar[type]
    """The dynamics class: ``world_type(task, physics=NOMINAL)`` builds the pymunk world of a sampled task."""

    def __init__(
        self,
        split: str,
        n_actions: int,
        obs_size: int,
        max_decisions: int,
        gravity: float = 1.0,
        friction: float = 1.0,
    ) -> None:
        self.split = check_split(split)
        self.physics = Perturbation(check_scale("gravity", gravity), check_scale("friction", friction))
        self.action_space = spaces.Discrete(n_actions)
        self.observation_space = spaces.Box(-OBS_BOUND, OBS_BOUND, (obs_size,), np.float32)
        self.max_decisions = max_decisions
        self._world: Any = None
        self._decisions = 0
        self._all_valid = np.ones(n_actions, np.int8)
        self._mask = self._all_valid  # the mask of the current state (what info["action_mask"] holds)

    # hooks ---------------------------------------------------------------------------------------------------
    @abstractmethod
    def _sample_task(self, rng: np.random.Generator) -> Any:
        """Draw a task (a frozen dataclass of world parameters) for ``self.split`` from ``rng``."""

    @abstractmethod
    def simulate(self, world: Any, action: int) -> Outcome:
        """Dynamics: apply a valid ``action`` to ``world`` and say what happened (no text, no reward)."""

    @abstractmethod
    def _observe(self) -> Sequence[float]:
        """The numeric view of the current state, already scaled to about [-1, 1]."""

    @abstractmethod
    def describe(self) -> str:
        """The current scene and the goal in plain language."""

    @abstractmethod
    def action_texts(self) -> list[str]:
        """One plain-language text per action."""

    def _valid(self) -> np.ndarray:
        """The action mask (int8, 1 = valid) of the current state; called once per reset and per step."""
        return self._all_valid.copy()  # a copy (cheaper than np.ones): each info gets its own mask

    def narrate(self, outcome: Outcome) -> str:
        """One or two sentences on what the last action did (empty after reset)."""
        return ""

    def _begin(self) -> None:
        """Precompute what stays fixed through the new episode (text about the task's fixed parts); called by
        ``reset`` once the world is built, so that every step only renders what changed. Nothing by default."""

    # gymnasium API -------------------------------------------------------------------------------------------
    @property
    def world(self) -> Any:
        """The current episode's world (dynamics); ``None`` before the first reset."""
        return self._world

    @property
    def decisions_left(self) -> int:
        """Decisions the agent still has in this episode."""
        return self.max_decisions - self._decisions

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._world = self.world_type(self._sample_task(self.np_random), self.physics)
        self._decisions = 0
        self._begin()
        self._mask = self._valid()
        return self._obs(), self._info(Outcome(), self._mask, at_reset=True)

    def step(self, action: Any):
        if self._world is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        n = self.action_space.n
        if not (isinstance(action, _INTS) and 0 <= action < n) and not self.action_space.contains(action):
            raise ValueError(f"action must be an int in [0, {n - 1}], got {action!r}")
        action = int(action)
        self._decisions += 1
        # The mask handed out with the last observation says which actions are valid now; it is computed once per
        # reset or step (the world only changes in simulate).
        if self._mask[action]:
            outcome = self.simulate(self._world, action)
        else:
            outcome = Outcome(facts={"masked": action})
        if not outcome.done and self._decisions >= self.max_decisions:
            outcome.done = True
        self._mask = self._valid()
        return self._obs(), success_reward(outcome), outcome.done, False, self._info(outcome, self._mask)

    # helpers -------------------------------------------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        values = self._observe()
        # Checking the bounds on the short list first is cheaper than clipping every array (values rarely stray).
        if min(values) >= -OBS_BOUND and max(values) <= OBS_BOUND:
            return np.array(values, np.float32)
        obs = np.array(values, np.float32)
        return obs.clip(-OBS_BOUND, OBS_BOUND, out=obs)

    def _info(self, outcome: Outcome, mask: np.ndarray, at_reset: bool = False) -> dict[str, Any]:
        if at_reset:
            text = self.describe().strip()
        else:
            said = self.narrate(outcome)
            if outcome.facts.get("masked") is not None:
                said = "That action is not possible now; nothing happened. " + said
            if outcome.done:
                text = said.strip() or "The episode is over."
            else:
                text = f"{said} {self.describe()}".strip()
        info: dict[str, Any] = {
            "text": text,
            "action_texts": self.action_texts(),
            "action_mask": mask,
            "events": outcome.events,  # each outcome is new, so its dict is the caller's own
        }
        if self.info_scene:
            info["scene"] = self._world.sim.scene()
        if outcome.done:
            info["success"] = bool(outcome.success)
        return info
