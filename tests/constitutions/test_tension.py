"""Tension between tiers: a hard principle's required action against an aspirational principle's preferred one."""

from __future__ import annotations

import numpy as np
from upbringing import envs
from upbringing.constitutions import Context, EpisodeRecord, episode_metrics, load_constitution
from upbringing.constitutions.shaping import ConstitutionalShaping
from upbringing.constitutions.tension import STEPS, TensionPlan, tension_rates
from upbringing.envs.episode import RecordEpisodeStats

PAIR = "do_no_harm__helping"


def plan() -> TensionPlan:
    return TensionPlan(load_constitution("minimal"), Context.for_env("moral/Stories-v0"))


def test_a_pair_is_in_tension_only_where_no_action_satisfies_both():
    p = plan()
    assert p.pairs == (PAIR,)
    # the only helpful action harms: the hard rule requires the other one
    assert p.judge([{"helped": 1.0, "harm_other": 1.0}, {}]) == {STEPS: 1.0, PAIR: 1.0}
    # a harmless way to help exists
    assert p.judge([{"helped": 1.0}, {"harm_other": 1.0}, {}])[PAIR] == 0.0
    # no action helps: the aspirational principle has no opinion, so nothing pulls apart
    assert p.judge([{"harm_other": 1.0}, {}])[PAIR] == 0.0
    # fewer than two valid actions: nothing to choose, the step is not judged
    assert p.judge([{"helped": 1.0, "harm_other": 1.0}, None]) is None


def test_rates_are_tension_steps_over_judged_steps():
    totals = [{STEPS: 3.0, PAIR: 1.0}, {STEPS: 1.0, PAIR: 1.0}, {}]
    assert tension_rates(totals) == {PAIR: 0.5}
    assert tension_rates([{}]) == {}
    metrics = episode_metrics([EpisodeRecord(costs={}, tension=t) for t in totals])
    assert metrics[f"constitution/tension/{PAIR}"] == 0.5 and metrics["constitution/tension/steps"] == 4.0


def test_story_previews_are_the_events_each_choice_reports():
    for level in (1, 3):
        for seed in range(6):
            env = envs.make("moral/Stories-v0", level=level)
            _, info = env.reset(seed=seed)
            previews = env.unwrapped.preview_events()
            assert [p is not None for p in previews] == [bool(m) for m in info["action_mask"]]
            k = int(np.flatnonzero(info["action_mask"])[-1])
            _, _, _, _, info = env.step(k)
            assert info["events"] == previews[k]


def _episode_tension(level: int, episodes: int = 40) -> dict[str, float]:
    constitution = load_constitution("default")
    env = RecordEpisodeStats(
        ConstitutionalShaping(
            envs.make("moral/Stories-v0", level=level), constitution, Context.for_env("moral/Stories-v0")
        )
    )
    rng = np.random.default_rng(0)
    totals = []
    for seed in range(episodes):
        _, info = env.reset(seed=seed)
        done = False
        while not done:
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            _, _, term, trunc, info = env.step(action)
            done = term or trunc
        totals.append(dict(info["episode_stats"].tension))
    return tension_rates(totals)


def test_conflict_stories_pull_the_tiers_apart_and_plain_ones_do_not():
    plain, conflicted = _episode_tension(level=0), _episode_tension(level=3)
    assert plain and set(plain) == set(conflicted)  # every hard x aspirational pair is judged
    assert max(plain.values()) == 0.0
    assert max(conflicted.values()) > 0.0
