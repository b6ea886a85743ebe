"""The physics family: pymunk worlds graded by developmental concept. ``SPECS`` lists them (see
:class:`envs.registry.EnvSpec`) in the order infants master the concepts; each spec's levels go easiest first.

Entry points are import strings, so importing this package imports neither pymunk nor the env modules.
"""

from __future__ import annotations

from upbringing.envs.registry import EnvSpec

_PHYSICAL_EVENTS = ("tower_fell", "object_dropped", "object_broken")

SPECS: list[EnvSpec] = [
    EnvSpec(
        id="physics/ObjectPermanence-v0",
        entry_point="upbringing.envs.physics.permanence:ObjectPermanenceEnv",
        family="physics",
        api="gymnasium",
        description="A block slides behind a screen and stops out of sight; reach where it must be.",
        event_names=("object_found",),
        levels=(
            {"screen_width": 3, "n_objects": 1, "distractors": 0},
            {"screen_width": 4, "n_objects": 1, "distractors": 1},
            {"screen_width": 5, "n_objects": 2, "distractors": 1},
        ),
        extra={
            "age_months": [2.5, 3.5],
            "source": "Aguiar & Baillargeon (1999), Cognitive Psychology 39:116-157; Baillargeon (1987), "
            "Developmental Psychology 23:655-664",
            "concept": "object permanence: hidden objects go on existing and moving along their path",
        },
    ),
    EnvSpec(
        id="physics/Support-v0",
        entry_point="upbringing.envs.physics.support:SupportEnv",
        family="physics",
        api="gymnasium",
        description="Pull posts out from under a loaded plank one at a time without bringing it down.",
        event_names=_PHYSICAL_EVENTS,
        levels=(
            {"n_supports": 3, "n_loads": 0, "keep": 1, "vary_mass": False},
            {"n_supports": 3, "n_loads": 1, "keep": 1, "vary_mass": False},
            {"n_supports": 4, "n_loads": 2, "keep": 1, "vary_mass": True},
            {"n_supports": 5, "n_loads": 2, "keep": 1, "vary_mass": True},
        ),
        extra={
            "age_months": [6.5, 8.0],
            "source": "Baillargeon, Needham & DeVos (1992), Early Development and Parenting 1:69-78",
            "concept": "support: an object stays up only while its weight rests over a support",
        },
    ),
    EnvSpec(
        id="physics/Containment-v0",
        entry_point="upbringing.envs.physics.containment:ContainmentEnv",
        family="physics",
        api="gymnasium",
        description="Let go of a ball above a row of containers so it ends up inside the one that can hold it.",
        event_names=("object_contained", "object_spilled", "object_dropped"),
        levels=(
            {"n_containers": 1, "flaws": "opening", "moving": False, "drops": 2},
            {"n_containers": 2, "flaws": "opening", "moving": False, "drops": 1},
            {"n_containers": 3, "flaws": "all", "moving": False, "drops": 1},
            {"n_containers": 3, "flaws": "all", "moving": True, "drops": 1},
        ),
        extra={
            "age_months": [7.5, 7.5],
            "source": "Hespos & Baillargeon (2001), Cognition 78:207-245; Hespos & Baillargeon (2001), "
            "Psychological Science 12:141-147; Hespos & Baillargeon (2006), Cognition 99:B31-B41",
            "concept": "containment: an object goes into a container only through an opening (expected from 2.5 "
            "months), and is held all inside only by a container deep enough for it (judged, and acted on, from "
            "7.5 months)",
        },
    ),
    EnvSpec(
        id="physics/Collision-v0",
        entry_point="upbringing.envs.physics.collision:CollisionEnv",
        family="physics",
        api="gymnasium",
        description="Choose a push (direction, strength) so a block, or the block it hits, stops on a target.",
        event_names=("target_hit", "object_dropped", "object_broken"),
        levels=(
            {"n_strengths": 3, "pushes": 2, "struck": False, "vary_mass": False},
            {"n_strengths": 4, "pushes": 1, "struck": False, "vary_mass": False},
            {"n_strengths": 4, "pushes": 1, "struck": True, "vary_mass": False},
            {"n_strengths": 6, "pushes": 1, "struck": True, "vary_mass": True},
        ),
        extra={
            "age_months": [11.0, 12.0],
            "source": "Kotovsky & Baillargeon (1994), Cognition 51:107-129",
            "concept": "collision: how far a hit object travels depends on how hard, and by what, it is hit",
        },
    ),
    EnvSpec(
        id="physics/Stability-v0",
        entry_point="upbringing.envs.physics.stability:StabilityEnv",
        family="physics",
        api="gymnasium",
        description="Add blocks to a tower so its top leans out to a goal without the tower toppling.",
        event_names=_PHYSICAL_EVENTS,
        levels=(
            {"prebuilt": 2, "n_place": 1, "n_offsets": 9, "vary_mass": False},
            {"prebuilt": 3, "n_place": 2, "n_offsets": 9, "vary_mass": False},
            {"prebuilt": 4, "n_place": 3, "n_offsets": 9, "vary_mass": True},
        ),
        extra={
            "age_months": [12.5, 13.0],
            "source": "Baillargeon (1995), A model of physical reasoning in infancy, Advances in Infancy Research 9",
            "concept": "stability: a stack stands while each part's centre of mass lies over what holds it",
        },
    ),
]
