"""Support: which post holds the plank up? Pull out posts one at a time without bringing the structure down.

After Baillargeon, Needham & DeVos (1992): from about 6.5 months infants expect an object to fall unless enough of
it rests on its support, judging by where its weight lies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from operator import sub

import numpy as np
from upbringing.envs.arguments import check_bool, check_int
from upbringing.envs.physics.base import (
    COLOURS,
    NOMINAL,
    Outcome,
    Perturbation,
    PhysicsEnv,
    Sim,
    m,
    material,
    plural,
)
from upbringing.envs.physics.params import band_uniform, uniform

POST_WIDTH, POST_HEIGHT = 0.3, 0.8
PLANK_LENGTH, PLANK_THICKNESS, PLANK_MASS = 3.0, 0.1, 1.0
LOAD_SIZE = 0.3
MARGIN = 0.08  # every candidate end state keeps the centre of mass this far inside or outside its support

_PLANK_SAID = f"A level wooden plank {m(PLANK_LENGTH)} long ({PLANK_MASS:.1f} kg, weight spread evenly) spans x = "
_POSTS_SAID = f", resting on posts fixed to the floor, each {m(POST_WIDTH)} wide and {m(POST_HEIGHT)} tall: "


@dataclass(frozen=True)
class SupportTask:
    """One support task.

    Attributes:
        plank_x: Centre of the plank, m.
        posts: Post centres, m, left to right.
        loads: ``(x, mass, fragile)`` of each box resting on the plank.
        keep: How many posts must remain at the end.
    """

    plank_x: float
    posts: tuple[float, ...]
    loads: tuple[tuple[float, float, bool], ...]
    keep: int

    @cached_property
    def centre_of_mass(self) -> float:
        """Horizontal centre of mass of the plank and its loads, m."""
        return centre_of_mass(self.plank_x, self.loads)


def centre_of_mass(plank_x: float, loads: tuple[tuple[float, float, bool], ...]) -> float:
    """Horizontal centre of mass (m) of the plank centred at ``plank_x`` and the boxes ``loads`` on it."""
    mass = PLANK_MASS + sum(w for _, w, _ in loads)
    return (PLANK_MASS * plank_x + sum(x * w for x, w, _ in loads)) / mass


def textbook_margin(task: SupportTask, posts: tuple[int, ...]) -> float:
    """How far (m) the centre of mass lies inside the span of ``posts`` (negative: outside, so it falls).

    The rigid-body rule a plank on posts obeys; used only to design tasks, never to decide outcomes.
    """
    xs = [task.posts[i] for i in posts]
    com = task.centre_of_mass
    return min(com - (min(xs) - POST_WIDTH / 2), max(xs) + POST_WIDTH / 2 - com)


class SupportWorld:
    """Dynamics: static posts on the floor, a plank across them, boxes on the plank."""

    def __init__(self, task: SupportTask, physics: Perturbation = NOMINAL) -> None:
        self.task = task
        self.sim = Sim(physics=physics)
        self.sim.segment((-10.0, 0.0), (10.0, 0.0))
        self.posts = [self.sim.static_box(x, POST_HEIGHT / 2, POST_WIDTH, POST_HEIGHT) for x in task.posts]
        self.present = [True] * len(task.posts)
        self.plank = self.sim.box(
            task.plank_x, POST_HEIGHT + PLANK_THICKNESS / 2, PLANK_LENGTH, PLANK_THICKNESS, PLANK_MASS
        )
        top = POST_HEIGHT + PLANK_THICKNESS + LOAD_SIZE / 2
        self.loads = [self.sim.box(x, top, LOAD_SIZE, LOAD_SIZE, w, fragile=f) for x, w, f in task.loads]
        self.sim.run(max_seconds=0.5)  # let contacts settle before the agent looks
        self.fallen = False
        self.on_floor: set[object] = set()

    @property
    def removed(self) -> int:
        """Posts pulled out so far."""
        return self.present.count(False)

    def pull(self, post: int) -> Outcome:
        """Pull out ``post`` and simulate until everything rests."""
        self.sim.remove(self.posts[post])
        self.present[post] = False
        broken_before = len(self.sim.broken)
        self.sim.run(max_seconds=3.0, min_seconds=0.5)
        events: dict[str, float] = {}
        plank_down = abs(self.plank.angle) > 0.1 or self.plank.position.y < POST_HEIGHT
        if plank_down and not self.fallen:
            self.fallen = True
            events["tower_fell"] = 1.0
        dropped = [b for b in self.loads if b.position.y < POST_HEIGHT / 2 and b not in self.on_floor]
        self.on_floor.update(dropped)
        if dropped:
            events["object_dropped"] = float(len(dropped))
        if len(self.sim.broken) > broken_before:
            events["object_broken"] = float(len(self.sim.broken) - broken_before)
        still_up = not self.fallen and not self.on_floor
        done = not still_up or len(self.posts) - self.removed <= self.task.keep
        return Outcome(events, done=done, success=done and still_up, facts={"dropped": len(dropped)})


class SupportEnv(PhysicsEnv):
    """A plank lies across posts with boxes on it; pull out posts one at a time and keep everything up.

    The posts (0.3 m wide, 0.8 m tall) are fixed to the floor; the plank (3 m, 1 kg) and the boxes on it are free.
    The agent must pull out ``n_supports - keep`` posts; the plank stays up only while its centre of mass (with
    the boxes) lies over the span of the remaining posts, so the agent must find the posts that bear the load.

    - Actions: ``Discrete(n_supports)``: pull out post ``i`` (posts numbered left to right). Posts already pulled
      out are masked; choosing one anyway does nothing and uses up a decision.
    - Observation (``Box(-1, 1, (3 + 2 * n_supports + 3 * n_loads,))``): decisions left (fraction), plank centre
      and angle, then per post (present, x), then per box (x, mass, still on the plank); post and box positions
      are relative to the plank's centre (m / 1.5), the plank's own position is in m / 2.
    - Reward: 1 when the last required post is out and nothing fell (``success``), else 0.
    - Episode: ``n_supports - keep`` decisions; it ends early when the plank falls (failure).
    - Events: ``tower_fell`` (the plank came down), ``object_dropped`` (boxes that hit the floor),
      ``object_broken`` (glass boxes that broke).
    - Split: ``eval`` draws the plank's position and the boxes' positions from bands disjoint from ``train``'s.
    - Shift: ``gravity`` and ``friction`` multiply g and every contact's friction coefficient, unannounced
      (the text keeps the nominal values); the default 1 leaves the world unchanged.

    Version history: v0, first version.
    """

    world_type = SupportWorld
    event_names = ("tower_fell", "object_dropped", "object_broken")

    def __init__(
        self,
        n_supports: int = 3,
        n_loads: int = 0,
        keep: int = 1,
        vary_mass: bool = False,
        split: str = "train",
        gravity: float = 1.0,
        friction: float = 1.0,
    ) -> None:
        self.n_supports = check_int("n_supports", n_supports, 2, 5)
        self.n_loads = check_int("n_loads", n_loads, 0, 4)
        self.keep = check_int("keep", keep, 1, self.n_supports - 1)
        self.vary_mass = check_bool("vary_mass", vary_mass)
        # first and last post of every set of posts that could remain
        self._kept_spans = [(kept[0], kept[-1]) for kept in combinations(range(self.n_supports), self.keep)]
        # text that depends only on the arguments (the goal by decisions left, the texts of pulled-out posts)
        self._goals = [
            f" Goal: pull out {plural(left, 'more post')}, one at a time, so that the plank and everything on it "
            f"stay up; {plural(self.keep, 'post')} will remain."
            for left in range(self.n_supports - self.keep + 1)
        ]
        self._gone_texts = [f"post {i + 1} is already gone (nothing happens)" for i in range(self.n_supports)]
        super().__init__(
            split,
            n_actions=self.n_supports,
            obs_size=3 + 2 * self.n_supports + 3 * self.n_loads,
            max_decisions=self.n_supports - self.keep,
            gravity=gravity,
            friction=friction,
        )

    # task ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _spread(rng: np.random.Generator, n: int, lo: float, hi: float, gap: float = 0.5) -> list[float]:
        """``n`` sorted positions drawn uniformly from those in ``[lo, hi]`` at least ``gap`` apart."""
        span = hi - lo - (n - 1) * gap
        slack = sorted([span * u for u in rng.random(n).tolist()])  # the draws of rng.uniform(0, span, n)
        return [lo + u + i * gap for i, u in enumerate(slack)]

    def _sample_task(self, rng: np.random.Generator) -> SupportTask:
        half, h = PLANK_LENGTH / 2, POST_WIDTH / 2
        n, keep, split = self.n_supports, self.keep, self.split
        for _ in range(1000):
            plank_x = band_uniform(rng, -0.6, 0.6, split)
            loads: tuple[tuple[float, float, bool], ...] = ()
            com = plank_x
            if self.n_loads:
                offsets = [band_uniform(rng, -half + 0.25, half - 0.25, split) for _ in range(self.n_loads)]
                if any(abs(a - b) < LOAD_SIZE + 0.05 for a, b in combinations(offsets, 2)):
                    continue
                loads = tuple(
                    (plank_x + dx, uniform(rng, 0.5, 3.0) if self.vary_mass else 1.0, rng.random() < 0.4)
                    for dx in offsets
                )
                com = centre_of_mass(plank_x, loads)
            posts = self._spread(rng, n, plank_x - half + 0.2, plank_x + half - 0.2)
            if keep == 1:
                # The post nearest the centre of mass moves right under it; the rest stay clearly elsewhere.
                off = [abs(x - com) for x in posts]
                posts[off.index(min(off))] = com + uniform(rng, -0.04, 0.04)
                if min(map(sub, posts[1:], posts[:-1])) < 0.5:
                    continue
                # Every margin check below now holds: the centre of mass lies at least 0.11 m inside the post under
                # it, and at least 0.31 m outside every other post (0.5 m apart from that one).
                return SupportTask(plank_x, tuple(posts), loads, keep)
            # textbook_margin of every set of posts that could remain (and of them all): posts are sorted here, so
            # a set of them spans its first to its last
            if min(com - (posts[0] - h), posts[-1] + h - com) < MARGIN:
                continue
            margins = [min(com - (posts[a] - h), posts[b] + h - com) for a, b in self._kept_spans]
            if min(map(abs, margins)) >= MARGIN and max(margins) > 0 > min(margins):
                return SupportTask(plank_x, tuple(posts), loads, keep)
        raise RuntimeError("could not design a support task")  # unreachable for the accepted arguments

    # dynamics ------------------------------------------------------------------------------------------------
    def simulate(self, world: SupportWorld, action: int) -> Outcome:
        return world.pull(action)

    def _valid(self) -> np.ndarray:
        return np.array(self._world.present, np.int8)

    # numeric view --------------------------------------------------------------------------------------------
    def _observe(self) -> list[float]:
        # Posts and boxes are placed relative to the plank's centre: where the weight lies along the plank is
        # what decides which post bears it, and this frame lets a small network see that directly.
        w = self._world
        plank = w.plank
        centre = self._centre = plank.position.x  # describe() reuses it: reset and step observe, then describe
        obs = [(self.max_decisions - self._decisions) / self.max_decisions, centre / 2, plank.angle]
        for present, x in zip(w.present, w.task.posts):
            obs.append(1.0 if present else -1.0)
            obs.append((x - centre) / 1.5)
        for body, (_, mass, _) in zip(w.loads, w.task.loads):
            x, y = body.position
            obs += ((x - centre) / 1.5, mass / 3, 1.0 if y > POST_HEIGHT else -1.0)
        return obs

    # text view -----------------------------------------------------------------------------------------------
    def _begin(self) -> None:
        t = self._world.task
        where = [f"x = {m(x)}" for x in t.posts]
        self._post_said = [f"post {i} at {at}" for i, at in enumerate(where, 1)]
        self._pull_texts = [f"pull out post {i} ({at})" for i, at in enumerate(where, 1)]
        if t.loads:
            self._box_said = [
                f"a {COLOURS[i]} {material(f)} box ({mass:.1f} kg) at x = " for i, (_, mass, f) in enumerate(t.loads)
            ]

    def describe(self) -> str:
        w = self._world
        x = self._centre
        present = w.present
        standing = ", ".join([said for said, here in zip(self._post_said, present) if here])
        text = f"{_PLANK_SAID}{x - PLANK_LENGTH / 2:.1f} m to {x + PLANK_LENGTH / 2:.1f} m{_POSTS_SAID}{standing}."
        if not all(present):
            gone = [str(i + 1) for i, here in enumerate(present) if not here]
            text += f" Already pulled out: post {', '.join(gone)}."
        if w.loads:
            boxes = [f"{said}{body.position.x:.1f} m" for said, body in zip(self._box_said, w.loads)]
            text += f" On the plank: {', '.join(boxes)}."
        return text + self._goals[self.decisions_left]

    def action_texts(self) -> list[str]:
        return [
            pull if here else gone for pull, gone, here in zip(self._pull_texts, self._gone_texts, self._world.present)
        ]

    def narrate(self, outcome: Outcome) -> str:
        if not outcome.events:  # the usual case
            return "The plank stayed up." if outcome.facts.get("masked") is None else ""
        said = []
        if outcome.events.get("tower_fell"):
            said.append("The plank tipped over and came down.")
        if outcome.events.get("object_dropped"):
            said.append(f"{plural(outcome.facts['dropped'], 'box')} fell to the floor.")
        if outcome.events.get("object_broken"):
            said.append("A glass box broke.")
        if outcome.facts.get("masked") is None and not said:
            said.append("The plank stayed up.")
        return " ".join(said)
