"""Layers: principles switch on only in their context (stage, family, risk level, possible events)."""

from __future__ import annotations

import pytest
from upbringing.constitutions import ConstitutionalShaping, Context, load_constitution, parse_constitution
from upbringing.envs.registry import EnvSpec, registered


def _active(name: str, context: Context) -> set[str]:
    return {p.id for p in load_constitution(name).active(context)}


CORE = {"do_no_harm", "honesty"}


def test_core_principles_apply_everywhere_and_layers_only_in_context():
    assert _active("layered", Context("tower", "physics")) == CORE | {"gentle_hands"}
    assert _active("layered", Context("prisoners", "social")) == CORE
    commons = Context("fishery", "social", events=frozenset({"overharvested", "free_rode"}))
    assert _active("layered", commons) == CORE | {"steward_the_commons"}
    assert _active("layered", Context("keep-your-promise", "moral")) == CORE | {"keep_promises", "keep_hard_promises"}
    # keep_promises needs the stage and the family to match
    assert "keep_promises" not in _active("layered", Context("keep-your-promise", "social"))
    assert "keep_hard_promises" in _active("layered", Context("keep-your-promise", "social"))


@pytest.mark.parametrize(
    ("risk", "events", "expected"),
    [
        (None, (), set()),
        ("low", ("harm_other",), set()),
        ("medium", (), set()),
        ("medium", ("harm_other",), {"help_in_need"}),
        ("high", (), {"no_harm_when_stakes_are_high"}),
        ("high", ("harm_other",), {"no_harm_when_stakes_are_high", "help_in_need"}),
    ],
)
def test_risk_and_event_layers(risk, events, expected):
    context = Context("story", "moral", risk=risk, events=frozenset(events))
    assert _active("layered", context) - CORE == expected


def test_default_constitution_takes_extra_care_where_harm_is_possible():
    plain = Context("stories", "moral", risk="low", events=frozenset({"deceived"}))
    harmful = Context("stories", "moral", risk="low", events=frozenset({"harm_other"}))
    risky = Context("stories", "moral", risk="high", events=frozenset({"harm_other"}))
    assert "care_where_harm_possible" not in _active("default", plain)
    assert "care_where_harm_possible" in _active("default", harmful)
    assert "extra_caution_high_risk" not in _active("default", harmful)
    assert "extra_caution_high_risk" in _active("default", risky)


def test_stage_patterns_are_globs():
    c = parse_constitution(
        "name: t\nversion: '1'\nprinciples:\n- {id: p, text: x, tier: soft, applies: {stages: ['moral-*', tutorial]},"
        " judge: {rule: stole}}\n"
    )
    assert [p.id for p in c.active(Context("moral-stories-2", "moral"))] == ["p"]
    assert [p.id for p in c.active(Context("tutorial", "physics"))] == ["p"]
    assert c.active(Context("physics-moral-1", "physics")) == ()


def test_an_inactive_layer_adds_no_term_and_costs_nothing(temptation):
    c = load_constitution("layered")
    on = Context("s", "moral", risk="high")
    off = Context("s", "moral", risk="low")
    for ctx, expected in ((on, -4.0 * 0.5), (off, None)):
        env = ConstitutionalShaping(temptation(harm=True), c, ctx, {"no_harm_when_stakes_are_high": 4.0})
        env.reset(seed=0)
        info = env.step(temptation.STEAL)[4]
        term = info["reward_terms"].get("constitution/no_harm_when_stakes_are_high")
        assert term == (pytest.approx(expected) if expected is not None else None)
        assert ("no_harm_when_stakes_are_high" in info["costs"]) == (expected is not None)


def test_context_for_a_registered_env_reads_family_and_events():
    env_id = "moral/ConstitutionTestStory-v0"
    story = EnvSpec(
        id=env_id,
        entry_point="builtins:object",
        family="moral",
        api="pettingzoo",  # not added to Gymnasium's registry
        description="a story used to test contexts",
        event_names=("harm_other", "helped"),
    )
    with registered(story):  # only for this test: other tests list the real registry
        ctx = Context.for_env(env_id, stage="stories", risk="high")
    assert (ctx.family, ctx.stage, ctx.risk, ctx.events) == ("moral", "stories", "high", {"harm_other", "helped"})
    assert "care_where_harm_possible" in _active("default", ctx)


def test_context_rejects_unknown_risk_levels_and_families():
    with pytest.raises(ValueError, match="risk level 'hihg'"):
        Context("s", "moral", risk="hihg")
    with pytest.raises(ValueError, match="family 'chemistry'"):
        Context("s", "chemistry")
