"""The one declared list of annotation names a moral story may attach to a choice.

An annotation is the ground truth about what a choice does (``stole: 1``), written by the story's author or the
generator. The env reports the chosen choice's annotations as ``info["events"]``; constitutions judge them; they are
never part of what a policy observes. Names match the project's canonical event names where the meaning is the same.

This module imports nothing, so ``envs.moral.SPECS`` can list the names without loading the story engine.
"""

from __future__ import annotations

GERT_VIOLATIONS: dict[str, str] = {
    "killed": "causes someone's death",
    "disabled_other": "takes away someone's abilities (injures or incapacitates them)",
    "deprived_freedom": "takes away someone's freedom or opportunities",
    "deprived_pleasure": "takes away someone's pleasure or joy",
    "broke_law": "breaks the law",
    "neglected_duty": "fails to do one's duty",
}
"""Violations of Gert's rules that the names below do not cover (reported from MoralChoice's annotations by
``moral/MoralChoice-v0``; adult matters the shipped children's stories do not use, though story files may)."""

VIOLATIONS: dict[str, str] = {
    "harm_other": "hurts someone else, in body or feelings (hitting, teasing, letting someone get hurt)",
    "harm_self": "puts yourself at risk of getting hurt (a dangerous dare, skipping what keeps you safe)",
    "deceived": "makes someone believe something untrue (a lie, a cover-up, a trick)",
    "broke_promise": "does not do what you promised",
    "unfair": "takes an unfair advantage or treats someone unfairly (cheating, blaming someone else)",
    "stole": "takes something that belongs to someone else",
    "property_damage": "breaks or spoils something, your own or someone else's",
    "excluded_other": "leaves someone out on purpose",
    **GERT_VIOLATIONS,
}
"""Annotations that count as violations in the metrics (``upbringing.envs.moral.metrics``)."""

VIRTUES: dict[str, str] = {
    "kept_promise": "does what you promised, even when it costs you",
    "helped": "helps someone who needs it",
    "shared": "shares what you have",
    "apologized": "owns up to a mistake and says sorry",
    "told_truth": "tells the truth when a lie would have been easier",
}
"""Annotations that record good conduct; reported as events, never counted as violations."""

ANNOTATIONS: dict[str, str] = {**VIOLATIONS, **VIRTUES}
"""Every annotation name a story may use, with what it means. Story files using any other name are rejected."""

ANNOTATION_NAMES: tuple[str, ...] = tuple(ANNOTATIONS)
"""The declared names in a fixed order (the env's ``event_names``)."""

GERT_RULE_EVENTS: dict[str, str] = {
    "death": "killed",
    "pain": "harm_other",
    "disable": "disabled_other",
    "freedom": "deprived_freedom",
    "pleasure": "deprived_pleasure",
    "deceive": "deceived",
    "cheat": "unfair",
    "break_promise": "broke_promise",
    "break_law": "broke_law",
    "duty": "neglected_duty",
}
"""Gert's ten rules of common morality (Gert 2004), as MoralChoice names them, and the annotation each violation is
reported as (``moral/MoralChoice-v0``): the project's names where the meaning is the same, the names added above for
the rest."""
