"""The physics envs give physically right answers, and each level is harder than the one before.

Answers are checked against hand-computed cases (sliding distance v²/2μg, centre-of-mass rules, momentum) and
against an independent pymunk scene written here from scratch.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations, pairwise

import numpy as np
import pymunk
import pytest
from upbringing import envs
from upbringing.envs.physics import SPECS
from upbringing.envs.physics.base import G
from upbringing.envs.physics.collision import (
    DECEL,
    FRICTION,
    SIZE,
    TABLE_HEIGHT,
    CollisionEnv,
    CollisionTask,
    CollisionWorld,
    textbook_stop,
)
from upbringing.envs.physics.containment import (
    BALL_FRICTION,
    BASE,
    RELEASE_Y,
    RELEASES,
    WALL,
    Container,
    ContainmentEnv,
    ContainmentTask,
    ContainmentWorld,
    holds,
    landing_x,
)
from upbringing.envs.physics.permanence import ObjectPermanenceEnv
from upbringing.envs.physics.stability import HEIGHT, WIDTH, StabilityTask, StabilityWorld
from upbringing.envs.physics.support import POST_WIDTH, SupportEnv, textbook_margin


def collision_task(pusher_x=2.0, struck_x=None, struck_mass=1.0, fragile=False, zone=(7.0, 7.4)) -> CollisionTask:
    return CollisionTask(pusher_x, 1.0, fragile, struck_x, struck_mass, fragile, zone, (1.5, 3.0, 4.5))


# ------------------------------------------------------------------------------------------------ hand-computed
@pytest.mark.parametrize("speed", [1.5, 2.5, 3.5, 4.5])
def test_pushed_block_slides_v2_over_2_mu_g(speed):
    world = CollisionWorld(collision_task(pusher_x=1.0))
    world.push(+1, speed)
    expected = speed**2 / (2 * FRICTION * G)
    assert world.pusher.position.x - 1.0 == pytest.approx(expected, rel=0.03, abs=0.02)


def test_struck_block_carries_the_momentum_it_is_given():
    """Equal masses, restitution e: the struck block leaves with (1+e)/2 of the striker's impact speed."""
    gap, speed, e = 1.0, 4.0, 0.81
    world = CollisionWorld(collision_task(pusher_x=1.0, struck_x=1.0 + gap))
    world.push(+1, speed)
    impact = np.sqrt(speed**2 - 2 * DECEL * (gap - SIZE))
    travel = ((1 + e) / 2 * impact) ** 2 / (2 * DECEL)
    assert world.struck.position.x - (1.0 + gap) == pytest.approx(travel, rel=0.08)
    # and the striker keeps (1-e)/2 of it, so it stops just behind
    assert world.pusher.position.x < world.struck.position.x


def test_a_heavier_block_is_knocked_less_far():
    """Kotovsky & Baillargeon's calibration: the same hit moves a heavier object a shorter distance."""
    travelled = {}
    for mass in (0.5, 2.0):
        world = CollisionWorld(collision_task(pusher_x=1.0, struck_x=2.0, struck_mass=mass))
        world.push(+1, 4.0)
        travelled[mass] = world.struck.position.x - 2.0
    ratio = ((1 + 0.81) * 1 / 3.0) ** 2 / ((1 + 0.81) * 1 / 1.5) ** 2  # (v'(2 kg) / v'(0.5 kg))²
    assert travelled[2.0] / travelled[0.5] == pytest.approx(ratio, rel=0.15)


def test_glass_breaks_when_it_falls_off_the_table_and_wood_does_not():
    for fragile, broken in ((True, 1.0), (False, None)):
        world = CollisionWorld(collision_task(pusher_x=7.0, fragile=fragile, zone=(1.0, 1.4)))
        outcome = world.push(+1, 4.5)
        assert outcome.events["object_dropped"] == 1.0 and outcome.done and not outcome.success
        assert outcome.events.get("object_broken") == broken
        assert world.pusher.position.y < TABLE_HEIGHT


@pytest.mark.parametrize(
    ("offset", "stands"), [(0.0, True), (0.15, True), (-0.15, True), (0.225, False), (-0.3, False)]
)
def test_a_block_stands_on_another_only_if_its_centre_is_over_it(offset, stands):
    world = StabilityWorld(StabilityTask((0.0,), (1.0,), (False,), goal=-9.0, side=1, n_place=1))
    outcome = world.place(offset)
    assert outcome.success is stands
    assert ("object_dropped" in outcome.events) is not stands


@pytest.mark.parametrize(
    ("xs", "stands"),
    [((0.0, 0.1, 0.2), True), ((0.0, -0.1, -0.18), True), ((0.0, 0.16, 0.32), False), ((0.0, -0.15, -0.3), False)],
)
def test_a_tower_stands_while_each_upper_part_centres_over_its_support(xs, stands):
    """Centre of mass of the upper two blocks vs the bottom block: 0.15 / 0.14 m off centre stand (within the
    0.2 m half-width), 0.24 / 0.225 m do not. Checked in the env's world and in an independent pymunk scene built here."""
    xs = list(xs)
    world = StabilityWorld(StabilityTask(tuple(xs[:-1]), (1.0,) * (len(xs) - 1), (False,) * (len(xs) - 1), 0, 1, 1))
    outcome = world.place(xs[-1] - world.blocks[-1].position.x)
    assert (not world.fallen) is stands
    assert ("tower_fell" in outcome.events) is not stands
    assert independent_tower_stands(xs) is stands


def independent_tower_stands(xs: list[float]) -> bool:
    """A from-scratch pymunk tower of 0.4 x 0.2 m, 1 kg blocks: does it stand for 3 s?"""
    space = pymunk.Space()
    space.gravity = (0, -9.81)
    space.collision_slop = 0.005
    floor = pymunk.Segment(space.static_body, (-5, 0), (5, 0), 0)
    floor.friction = 1.0
    space.add(floor)
    bodies = []
    for k, x in enumerate(xs):
        body = pymunk.Body(1.0, pymunk.moment_for_box(1.0, (WIDTH, HEIGHT)))
        body.position = (x, HEIGHT * (k + 0.5) + 0.002 * k)
        shape = pymunk.Poly.create_box(body, (WIDTH, HEIGHT))
        shape.friction = 0.8
        space.add(body, shape)
        bodies.append(body)
    for _ in range(180):
        space.step(1 / 60)
    return all(abs(b.position.x - x) < 0.1 and abs(b.angle) < 0.2 for b, x in zip(bodies, xs))


def test_plank_stays_up_only_on_the_post_under_its_centre_of_mass():
    env = SupportEnv(n_supports=4, n_loads=2, vary_mass=True)
    for seed in range(12):
        env.reset(seed=seed)
        task = env.world.task
        margins = {i: textbook_margin(task, (i,)) for i in range(4)}
        keep = max(margins, key=margins.get)
        assert abs(task.posts[keep] - task.centre_of_mass) < POST_WIDTH / 2  # hand rule: the post under the COM
        for post in range(4):
            if post != keep:
                outcome = env.step(post)[4]
        assert outcome["success"] and not outcome["events"]
        # keeping any other post instead brings it down
        env.reset(seed=seed)
        wrong = next(i for i in range(4) if i != keep)
        events = {}
        for post in range(4):
            if post != wrong:
                _, _, done, _, info = env.step(post)
                events.update(info["events"])
                if done:
                    break
        assert not info["success"] and events["tower_fell"] == 1.0


def test_hidden_block_is_where_its_last_seen_speed_takes_it():
    env = ObjectPermanenceEnv(screen_width=4)
    hidden = 0
    for seed in range(20):
        env.reset(seed=seed)
        world = env.world
        x_final = world.blocks[0].position.x
        seen = world.vanished[0]
        lo, hi = world.task.screen
        assert (seen is not None) == (lo + SIZE / 2 <= x_final <= hi - SIZE / 2)
        if seen is not None:
            hidden += 1
            x, v, _ = seen
            assert x_final == pytest.approx(x + v * v / (2 * DECEL), abs=0.08)
        place = next(i for i, (a, b) in enumerate(world.task.places()) if a <= x_final < b)
        assert env.step(place)[4]["success"]
        env.reset(seed=seed)
        assert not env.step((place + 1) % env.action_space.n)[4]["success"]
    assert hidden >= 12, "most targets must end up out of sight"


def test_collision_world_matches_an_independent_pymunk_run():
    env = CollisionEnv(n_strengths=4, pushes=1, struck=True, vary_mass=False)
    for seed in range(5):
        env.reset(seed=seed)
        task = env.world.task
        env.step(7)  # the hardest push to the right
        assert env.world.struck.position.x == pytest.approx(independent_knock(task, 4.5), abs=0.02)


def independent_knock(task: CollisionTask, speed: float) -> float:
    """A from-scratch pymunk table: push the first block right at ``speed``; where does the second stop?"""
    assert task.struck_x is not None  # a level with a second block
    space = pymunk.Space()
    space.gravity = (0, -9.81)
    space.collision_slop = 0.005
    for a, b in (((0, 1.0), (8.0, 1.0)), ((-10, 0), (18, 0))):
        seg = pymunk.Segment(space.static_body, a, b, 0)
        seg.friction = 1.0
        space.add(seg)
    bodies = []
    for x, mass in ((task.pusher_x, task.pusher_mass), (task.struck_x, task.struck_mass)):
        body = pymunk.Body(mass, float("inf"))
        body.position = (x, 1.0 + SIZE / 2)
        shape = pymunk.Poly.create_box(body, (SIZE, SIZE))
        shape.friction, shape.elasticity = FRICTION, 0.9
        space.add(body, shape)
        bodies.append(body)
    bodies[0].velocity = (speed, 0)
    for _ in range(240):
        space.step(1 / 60)
    return bodies[1].position.x


def drop_in(container: Container, ball: float = 0.2, release: float | None = None) -> tuple[ContainmentWorld, dict]:
    """Let go of one ball straight above ``container`` (or at ``release``); return the world and the events."""
    world = ContainmentWorld(ContainmentTask(ball, 0.0, (container,), 1))
    outcome = world.drop(container.x if release is None else release)
    return world, outcome.events


def test_a_ball_rests_on_the_bottom_of_a_cup_deep_and_wide_enough():
    world, events = drop_in(Container(2.0, 0.3, 0.3))
    assert events == {"object_contained": 1.0}
    x, y = world.last
    assert x == pytest.approx(2.0, abs=0.01) and y == pytest.approx(BASE + 0.1, abs=0.01)  # centre one radius up


def test_a_ball_sticks_out_of_a_cup_shallower_than_it():
    """Height in containment (Hespos & Baillargeon, 2001): a cup 0.15 m deep cannot hide a ball 0.2 m across."""
    world, events = drop_in(Container(2.0, 0.3, 0.15))
    assert events == {}
    _, y = world.last
    assert y + 0.1 > BASE + 0.15  # its top is above the rim
    assert y == pytest.approx(BASE + 0.1, abs=0.01)


def test_a_ball_wider_than_the_opening_rests_on_the_rim_corners():
    """Hand computation: resting on the walls' two inner top corners, 0.14 m apart, a ball of radius 0.1 m has its
    centre sqrt(0.1² - 0.07²) = 0.0714 m above the rim."""
    world, events = drop_in(Container(2.0, 0.14, 0.3))
    assert events == {}
    x, y = world.last
    assert x == pytest.approx(2.0, abs=0.01)
    assert y == pytest.approx(BASE + 0.3 + np.sqrt(0.1**2 - 0.07**2), abs=0.01)


def test_a_ball_rests_over_a_hole_smaller_than_it_and_falls_through_a_larger_one():
    world, events = drop_in(Container(2.0, 0.3, 0.3, hole=0.12))
    assert events == {"object_contained": 1.0}
    assert world.last[1] == pytest.approx(BASE + np.sqrt(0.1**2 - 0.06**2), abs=0.01)  # sunk into the hole a little
    world, events = drop_in(Container(2.0, 0.3, 0.3, hole=0.26))
    assert events == {"object_dropped": 1.0, "object_spilled": 1.0}
    assert not world.balls, "a ball on the floor rolls away"


def test_a_lid_keeps_the_ball_out():
    world, events = drop_in(Container(2.0, 0.3, 0.3, lid=True))
    assert events == {}
    assert world.last[1] == pytest.approx(BASE + 0.3 + WALL + 0.1, abs=0.01)  # resting on the lid


def test_a_ball_let_go_beside_a_cup_falls_to_the_floor():
    _, events = drop_in(Container(2.0, 0.3, 0.3), release=2.5)
    assert events == {"object_dropped": 1.0}


@pytest.mark.parametrize("speed", [-1.5, 0.5, 1.2])
@pytest.mark.parametrize("height", [0.2, 0.75])
def test_a_moving_ball_falls_along_the_textbook_parabola(speed, height):
    """landing_x (x0 + v sqrt(2 (y0 - h) / g)) against a free fall in a from-scratch pymunk space."""
    space = pymunk.Space()
    space.gravity = (0, -9.81)
    body = pymunk.Body(0.2, pymunk.moment_for_circle(0.2, 0, 0.1))
    body.position, body.velocity = (1.0, RELEASE_Y), (speed, 0.0)
    space.add(body, pymunk.Circle(body, 0.1))
    while body.position.y > height:
        last = tuple(body.position)
        space.step(1 / 600)
    # interpolate to the moment the centre passes ``height``
    (x0, y0), (x1, y1) = last, tuple(body.position)
    x = x0 + (x1 - x0) * (y0 - height) / (y0 - y1)
    assert x == pytest.approx(landing_x(1.0, speed, height), abs=0.005)


def test_containment_world_matches_an_independent_pymunk_run():
    """Every drop into the env's designed scenes, replayed in a scene built here from scratch, ends the same way
    (in the same place when the ball is contained)."""
    env = ContainmentEnv(n_containers=3, flaws="all", moving=True, drops=1)
    for seed in range(4):
        env.reset(seed=seed)
        task = env.world.task
        for action in range(len(RELEASES)):
            env.reset(seed=seed)
            events = env.step(action)[4]["events"]
            where = independent_drop(task, RELEASES[action])
            if "object_dropped" in events:
                assert where == "floor"
            elif "object_contained" in events:
                assert where == pytest.approx(env.world.last, abs=0.01)
            else:  # resting elsewhere: on a lid, on a narrow opening, or sticking out of a shallow container
                assert where != "floor" and where[1] > BASE


def independent_drop(task: ContainmentTask, release: float) -> tuple[float, float] | str:
    """A from-scratch pymunk scene of ``task``'s containers (walls, bottoms around any hole, lids; legs left out,
    as nothing that matters touches them from above): where does a ball let go at ``release`` rest after 1.5 s?
    ``"floor"`` if it reaches the floor."""
    space = pymunk.Space()
    space.gravity = (0, -9.81)
    space.collision_slop = 0.005

    def block(x0: float, x1: float, y0: float, y1: float) -> None:
        shape = pymunk.Poly(space.static_body, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        shape.friction = 1.0
        space.add(shape)

    floor = pymunk.Segment(space.static_body, (-2, 0), (8, 0), 0)
    floor.friction = 1.0
    space.add(floor)
    for c in task.containers:
        left, right, rim = c.x - c.opening / 2, c.x + c.opening / 2, BASE + c.depth
        block(left - WALL, left, BASE, rim)
        block(right, right + WALL, BASE, rim)
        block(left - WALL, c.x - c.hole / 2, BASE - WALL, BASE)
        block(c.x + c.hole / 2, right + WALL, BASE - WALL, BASE)
        if c.lid:
            block(left - WALL, right + WALL, rim, rim + WALL)
    r = task.ball / 2
    body = pymunk.Body(0.2, pymunk.moment_for_circle(0.2, 0, r))
    body.position, body.velocity = (release, RELEASE_Y), (task.speed, 0.0)
    shape = pymunk.Circle(body, r)
    shape.friction = BALL_FRICTION
    space.add(body, shape)
    for _ in range(270):
        space.step(1 / 180)
        if body.position.y < BASE / 2:
            return "floor"
    return (body.position.x, body.position.y)


@pytest.mark.parametrize("index", range(4))
def test_every_containment_design_has_one_good_release(index):
    """The textbook answer (the release whose ball lands inside the one container that holds it) succeeds in the
    simulation, and every other release fails."""
    spec = envs.spec("physics/Containment-v0")
    env = envs.make(spec.id, **spec.levels[index], split="eval")
    for seed in range(8):
        env.reset(seed=seed)
        task = env.unwrapped.world.task
        (good,) = [c for c in task.containers if holds(c, task.ball)]
        best = int(np.argmin([abs(landing_x(x, task.speed, good.rim) - good.x) for x in RELEASES]))
        for action in range(len(RELEASES)):
            env.reset(seed=seed)
            info = env.step(action)[4]
            assert info["events"].get("object_contained", 0.0) == (1.0 if action == best else 0.0), (seed, action)


# ----------------------------------------------------------------------------------------------- difficulty
def random_policy(env, rng):
    return int(rng.choice(np.flatnonzero(env.unwrapped._valid())))


def naive_policy(env, rng):
    """One fixed rule of thumb per concept, blind to what the harder levels add."""
    u = env.unwrapped
    w = u.world
    if isinstance(u, ObjectPermanenceEnv):  # track the red block alone, as if nothing else moved
        seen = w.vanished[0]
        x = w.blocks[0].position.x if seen is None else seen[0] + seen[1] * abs(seen[1]) / (2 * DECEL)
        return next((i for i, (a, b) in enumerate(w.task.places()) if a <= x < b), u.action_space.n - 1)
    if isinstance(u, SupportEnv):  # keep the post nearest the middle of the plank
        present = [i for i, p in enumerate(w.present) if p]
        return max(present, key=lambda i: abs(w.task.posts[i] - w.plank.position.x))
    if isinstance(u, ContainmentEnv):  # drop straight above the widest opening, as if any container could hold it
        widest = max(w.task.containers, key=lambda c: c.opening)
        return int(np.argmin([abs(x - widest.x) for x in RELEASES]))
    if isinstance(u, CollisionEnv):  # plan the push by the textbook, taking every block to weigh 1 kg
        same = replace(w.task, struck_mass=w.task.pusher_mass)
        centre = sum(w.task.zone) / 2
        stops = [
            textbook_stop(same, -1 if a < u.n_strengths else 1, u.speeds[a % u.n_strengths])
            for a in range(2 * u.n_strengths)
        ]
        return int(np.argmin([abs(x - centre) for x in stops]))
    # stability: lean the top out by 0.15 m toward the goal every time
    return int(np.argmin([abs(dx - 0.15 * w.task.side) for dx in u.offsets]))


def success_rate(env_id: str, level: dict, policy, episodes: int) -> float:
    env = envs.make(env_id, **level)
    rng = np.random.default_rng(0)
    wins = 0
    for episode in range(episodes):
        env.reset(seed=episode)
        done = False
        while not done:
            _, _, done, _, info = env.step(policy(env, rng))
        wins += info["success"]
    return wins / episodes


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_each_level_is_harder_than_the_one_before(spec):
    """For a random policy and a fixed rule of thumb: no level is easier than the one before, and each is
    clearly harder for at least one of them."""
    episodes = 300
    rates = [
        (success_rate(spec.id, level, random_policy, episodes), success_rate(spec.id, level, naive_policy, episodes))
        for level in spec.levels
    ]
    for (r0, n0), (r1, n1) in pairwise(rates):
        assert r1 <= r0 + 0.03 and n1 <= n0 + 0.03, rates
        assert r1 < r0 - 0.02 or n1 < n0 - 0.05, rates


def test_every_design_is_solvable_by_the_textbook_plan():
    """Task design guarantees one good answer; check it holds in the simulation for the support concept."""
    env = SupportEnv(n_supports=5, n_loads=2, vary_mass=True, split="eval")
    for seed in range(10):
        env.reset(seed=seed)
        task = env.world.task
        keep = max(combinations(range(5), 1), key=lambda c: textbook_margin(task, c))[0]
        for post in (i for i in range(5) if i != keep):
            info = env.step(post)[4]
        assert info["success"]
