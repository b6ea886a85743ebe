"""The event names each social-dilemma env can report in ``info["events"]``.

Kept apart from the env modules so that ``envs.social.SPECS`` can declare them without importing any simulation
code. Names shared with other families (``defected``, ``cooperated``, ``punished``, ...) keep the project's canonical
spelling so one constitution rule can judge them everywhere.
"""

from __future__ import annotations

#: A 2x2 game whose mutual defection is open conflict (prisoner's dilemma: mutual punishment; chicken: a crash).
MATRIX_CONFLICT_EVENTS: tuple[str, ...] = (
    "cooperated",
    "defected",
    "betrayed_cooperator",
    "was_betrayed",
    "conflict",
)
#: A 2x2 game without a conflict outcome (stag hunt: both hunting hares is a missed chance, not a fight).
MATRIX_EVENTS: tuple[str, ...] = ("cooperated", "defected", "betrayed_cooperator", "was_betrayed")

PUBLIC_GOODS_EVENTS: tuple[str, ...] = (
    "cooperated",
    "defected",
    "free_rode",
    "punished",
    "was_punished",
    "punished_contributor",
)

COMMONS_EVENTS: tuple[str, ...] = (
    "overharvested",
    "kept_pledge",
    "broke_pledge",
    "resource_collapsed",
)
