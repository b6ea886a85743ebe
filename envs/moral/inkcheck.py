"""Checking an Ink story for ``upbringing check``: explore its choice tree within a bound and list its problems
(unknown tags, events or variables, unreachable knots, runtime errors, dead ends)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from upbringing.envs.moral.inkfile import InkPlayer, InkRuntimeError, Passage, load_ink, story_mappings
from upbringing.envs.moral.inktags import TAG_KINDS, parse_tag, tag_problem
from upbringing.yamlfile import FileError, Problem


@dataclass(frozen=True)
class InkCheck:
    """What exploring a story's choice tree found.

    Attributes:
        path: The file.
        problems: One per problem (empty when the story is fine).
        states: Distinct story states visited.
        complete: True when every state reachable within ``max_depth`` choices was visited (the bound not hit).
        endings: ``ending:`` tag values reached.
        knots_reached: Knots and stitches entered.
        knots: Every knot and stitch.
        max_choices: The most choices offered at once.
    """

    path: str
    problems: list[Problem]
    states: int = 0
    complete: bool = False
    endings: tuple[str, ...] = ()
    knots_reached: tuple[str, ...] = ()
    knots: tuple[str, ...] = ()
    max_choices: int = 0

    def summary(self) -> str:
        """One line: states explored, endings and knots reached."""
        bound = "all" if self.complete else "bound reached after"
        endings = ", ".join(self.endings) or "none tagged"
        return (
            f"{bound} {self.states} states explored; endings reached: {endings}; knots reached "
            f"{len(self.knots_reached)}/{len(self.knots)}; at most {self.max_choices} choices at once"
        )


def check_ink_file(
    path: str | Path,
    *,
    max_states: int = 5000,
    max_depth: int = 50,
    seeds: Sequence[int] = (0, 1, 2, 3),
    max_choices: int = 6,
) -> InkCheck:
    """Load a compiled Ink story, check its tags and variable mappings, and explore its choice tree.

    Exploration is a depth-first walk over every choice from the opening of the story, once per seed in ``seeds``
    (Ink's random state decides ``RANDOM`` and shuffles), merging identical story states, up to ``max_states``
    states and ``max_depth`` choices per path. Problems: unknown tag kinds, events or malformed values; variable
    mappings naming undeclared or non-numeric variables; event or reward tags before the first choice (an episode
    reports no events on reset, so they would be lost); ``ending:`` tags, knots and stitches never reached within
    the bound; dead ends (the flow runs out of content without ``-> END``) and other runtime errors; more choices at
    once than ``max_choices`` (the env's default action count).
    """
    name = str(path)
    try:
        doc = load_ink(path)
    except FileError as err:
        return InkCheck(name, err.problems)
    name = str(doc.path)
    problems: list[Problem] = []

    def add(message: str, key: str | None = None) -> None:
        problem = Problem(name, message, key=key)
        if problem not in problems:
            problems.append(problem)

    for st in doc.tags:
        message = tag_problem(st.tag)
        if message:
            add(message, key="before any knot" if st.knot == "(top)" else f"knot '{st.knot}'")
    written = {st.tag.raw for st in doc.tags}  # reported above; only dynamic tags are reported when played
    try:
        player = InkPlayer(doc)
    except (ImportError, FileError) as err:
        for p in err.problems if isinstance(err, FileError) else [Problem(name, str(err))]:
            add(p.message)
        return InkCheck(name, problems, knots=doc.knots)
    for st in doc.tags:
        if st.tag.kind in ("variable", "reward_variable") and st.tag.raw not in player.global_tags:
            add(f"tag '{st.tag.raw}' must be a global tag (at the top of the story, before any content)", None)
    try:
        story_mappings(player, None, None, 1.0)  # the global tags' mappings name declared numeric variables
    except ValueError as err:
        add(str(err).removeprefix(f"{name}: "))

    endings: set[str] = set()
    reached: set[str] = set()
    seen: set[str] = set()
    most = 0
    complete = True

    def note(passage: Passage, after: str) -> None:
        nonlocal most
        reached.update(passage.knots)
        for raw in passage.tags:
            tag = parse_tag(raw)
            if tag.kind == "ending" and tag.value:
                endings.add(tag.value)
            elif tag.kind not in TAG_KINDS and tag.raw not in written:
                add(f"unknown tag '{raw}' {after}: expected one of the kinds {', '.join(TAG_KINDS)}")

    def key(state: str) -> str:
        data = json.loads(state)
        data.pop("turnIdx", None)  # the turn counter alone never makes two states play differently
        return json.dumps(data, sort_keys=True)

    def replay(seed: int, picks: tuple[int, ...]) -> None:
        player.reset(seed)
        for index in picks:
            player.choose(index)

    # A node is (seed, choice indices from the opening, their texts); replaying it is cheap for stories this size.
    stack: list[tuple[int, tuple[int, ...], tuple[str, ...]]] = []
    for seed in seeds:
        try:
            opening = player.reset(int(seed))
        except InkRuntimeError as err:
            add(str(err).removeprefix(f"{name}: ") + " (at the opening)")
            continue
        note(opening, "at the opening")
        early = [raw for raw in opening.tags if parse_tag(raw).kind in ("event", "reward")]
        for raw in early:
            add(
                f"tag '{raw}' comes before the first choice: an episode reports no events or reward on reset; "
                "put it on a choice or on a line after one"
            )
        k = key(player.save())
        if k not in seen:
            seen.add(k)
            stack.append((int(seed), (), ()))
    while stack:
        seed, picks, trail = stack.pop()
        replay(seed, picks)
        choices = player.choices()
        most = max(most, len(choices))
        if len(picks) >= max_depth:
            complete = False
            continue
        for i, (text, choice_tags) in enumerate(choices):
            path_text = " > ".join((*trail, text))
            for raw in choice_tags:
                if parse_tag(raw).kind not in TAG_KINDS and parse_tag(raw).raw not in written:
                    add(f"unknown tag '{raw}' on choice '{text}': expected one of the kinds {', '.join(TAG_KINDS)}")
            if i:
                replay(seed, picks)
            try:
                passage = player.choose(i)
            except InkRuntimeError as err:
                message = str(err).removeprefix(f"{name}: ")
                if "ran out of content" in message:
                    add(
                        f"dead end after choices '{path_text}': the flow runs out of content; "
                        "expected -> END or -> a knot"
                    )
                else:
                    add(f"{message} (after choices '{path_text}')")
                continue
            note(passage, f"after choices '{path_text}'")
            k = key(player.save())
            if k in seen:
                continue
            if len(seen) >= max_states:
                complete = False
                continue
            seen.add(k)
            stack.append((seed, (*picks, i), (*trail, text)))
    if most > max_choices:
        add(f"offers {most} choices at once; the env's default max_choices is {max_choices} (raise max_choices=)")
    bound = "" if complete else f" within {len(seen)} states and {max_depth} choices"
    if not seen:  # the story never started: reachability would only repeat that
        return InkCheck(name, problems, knots=doc.knots)
    for ending in sorted({st.tag.value for st in doc.tags if st.tag.kind == "ending" and st.tag.value} - endings):
        add(f"ending '{ending}' is never reached{bound}")
    for knot in doc.knots:
        if knot not in reached:
            add(f"knot '{knot}' is never reached{bound}")
    return InkCheck(
        name,
        problems,
        states=len(seen),
        complete=complete,
        endings=tuple(sorted(endings)),
        knots_reached=tuple(k for k in doc.knots if k in reached),
        knots=doc.knots,
        max_choices=most,
    )
