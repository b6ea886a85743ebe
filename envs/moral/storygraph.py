"""The graph checks every moral story must pass (reachable scenes, endings on every path, no loop without a way
out, flags set before they are read, rewards on the declared scale), and the range of returns a story allows.

Story files (:mod:`upbringing.envs.moral.storyfile`) and the generator (:mod:`upbringing.envs.moral.generator`) both
run :func:`story_problems`; :func:`normalise` rescales a story's rewards to its declared scale.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from upbringing.envs.moral.annotations import ANNOTATIONS
from upbringing.envs.moral.story import MAX_CHOICES, KeyPath, Scene, Story


def _edges(scene: Scene) -> Iterator[str]:
    for choice in scene.choices:
        for branch in choice.goto:
            yield branch.scene


def _strongly_connected(nodes: list[str], succ: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (stories are small, but recursion limits are not worth the risk)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ.get(nxt, ()))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


def story_problems(story: Story, opaque: frozenset[int] = frozenset()) -> list[tuple[KeyPath, str]]:
    """Check a story's graph; return ``(key path, message)`` for every problem (empty when the story is sound).

    Checks: duplicate scene ids; unknown scene references (``start`` and every ``goto``); endings with choices and
    scenes with neither; too many choices; choices without outcome (no ``goto``, or branches that can all fail);
    scenes where every choice is conditional; unknown annotation names; flags tested but never set; scenes that
    cannot be reached from the start; cycles from which no ending can be reached; a start scene with a reward (it is
    never received); and, for stories without cycles, paths whose rewards add up to more than 1 or less than -1 (or
    leave the ``reward_scale`` the story declares), each named by its scene ids.

    Args:
        story: The story to check.
        opaque: Indices of scenes whose exits could not all be read (a story file with schema errors): the
            whole-graph checks (reachability, cycles, returns) are skipped, since they would guess.
    """
    problems: list[tuple[KeyPath, str]] = []
    first_index: dict[str, int] = {}
    for i, scene in enumerate(story.scenes):
        if scene.id in first_index:
            problems.append(
                (
                    ("scenes", i, "id"),
                    f"duplicate scene id {scene.id!r} (already used by scenes[{first_index[scene.id]}])",
                )
            )
        else:
            first_index[scene.id] = i
    known = set(first_index)
    listing = ", ".join(sorted(k for k in known if k))

    if story.start not in known:
        problems.append((("start",), f"unknown scene {story.start!r}; expected one of: {listing}"))

    set_anywhere = {f for s in story.scenes for c in s.choices for f in c.set_flags}
    tested: list[tuple[KeyPath, str]] = []

    for i, scene in enumerate(story.scenes):
        at = ("scenes", i)
        if scene.ending is not None and scene.choices:
            problems.append(((*at, "choices"), "an ending has no choices: remove `choices` or `ending`"))
        if scene.ending is None and not scene.choices:
            problems.append(
                (at, "scene has no choices and is not an ending: add `choices` or `ending: good|mixed|bad`")
            )
        if len(scene.choices) > MAX_CHOICES:
            problems.append(((*at, "choices"), f"at most {MAX_CHOICES} choices per scene, got {len(scene.choices)}"))
        if scene.choices and all(c.when for c in scene.choices):
            problems.append(
                ((*at, "choices"), "every choice has a `when`; give at least one choice no `when` so the story goes on")
            )
        tested += [((*at, "passages", k, "when", f), f) for k, p in enumerate(scene.passages) for f in p.when]
        for j, choice in enumerate(scene.choices):
            cat = (*at, "choices", j)
            tested += [((*cat, "when", f), f) for f in choice.when]
            if not choice.goto:
                problems.append((cat, "choice has no outcome: add `goto: <scene id>` (or a list of branches)"))
            elif not choice.goto[-1].unconditional:
                problems.append(
                    (
                        (*cat, "goto", len(choice.goto) - 1),
                        "the last branch must have no `when` and no `chance`, so the choice always leads somewhere",
                    )
                )
            single = len(choice.goto) == 1 and choice.goto[0].unconditional
            for k, branch in enumerate(choice.goto):
                bat = (*cat, "goto") if single else (*cat, "goto", k, "scene")
                if branch.scene not in known:
                    problems.append((bat, f"unknown scene {branch.scene!r}; expected one of: {listing}"))
                tested += [((*cat, "goto", k, "when", f), f) for f in branch.when]
            for name in choice.annotations:
                if name not in ANNOTATIONS:
                    problems.append(
                        (
                            (*cat, "annotations", name),
                            f"unknown annotation {name!r}; expected one of: " + ", ".join(ANNOTATIONS),
                        )
                    )
    for path, flag in tested:
        if flag not in set_anywhere and not opaque:  # an unreadable choice may be the one that sets it
            problems.append((path, f"flag {flag!r} is never set by any choice (a choice sets it with `set:`)"))

    if story.start in first_index and story.by_id[story.start].reward != 0.0:
        problems.append(
            (("scenes", first_index[story.start], "reward"), "the start scene's reward is never received: use 0")
        )

    # Reachability and cycles are judged on the graph as written; with exits missing or pointing nowhere, they would
    # only repeat the same mistake as "unreachable" (a misspelt `goto` leaves its intended target unreachable).
    graph_complete = not any(
        message.startswith(("unknown scene", "duplicate scene id", "choice has no outcome", "the last branch"))
        for _, message in problems
    )
    if opaque or not graph_complete:
        return problems
    succ = {sid: [t for t in _edges(story.by_id[sid]) if t in first_index] for sid in first_index}
    seen = {story.start}
    frontier = [story.start]
    while frontier:
        for nxt in succ[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    for sid, i in first_index.items():
        if sid not in seen:
            problems.append((("scenes", i, "id"), f"scene {sid!r} cannot be reached from the start scene"))

    # Scenes from which some ending can be reached: walk the edges backwards from every ending.
    pred: dict[str, list[str]] = {sid: [] for sid in first_index}
    for sid, targets in succ.items():
        for t in targets:
            pred[t].append(sid)
    finishing = {sid for sid in first_index if story.by_id[sid].ending is not None}
    frontier = list(finishing)
    while frontier:
        for prev in pred[frontier.pop()]:
            if prev not in finishing:
                finishing.add(prev)
                frontier.append(prev)
    stuck = [sid for sid in first_index if sid in seen and sid not in finishing and story.by_id[sid].choices]
    stuck_succ = {sid: [t for t in succ[sid] if t in stuck] for sid in stuck}
    for component in _strongly_connected(stuck, stuck_succ):
        if len(component) > 1 or component[0] in stuck_succ[component[0]]:
            names = ", ".join(repr(s) for s in sorted(component, key=first_index.__getitem__))
            first = min(first_index[s] for s in component)
            problems.append((("scenes", first, "id"), f"scenes {names} form a cycle with no way out to an ending"))
        else:
            problems.append(((("scenes", first_index[component[0]], "id")), "no ending can be reached from this scene"))

    if not problems:
        problems += _total_problems(story)
    return problems


def _total_problems(story: Story) -> list[tuple[KeyPath, str]]:
    """Paths whose total reward leaves the story's scale ([-1, 1] unless the file declares ``reward_scale``)."""
    scale = story.reward_scale
    extremes = path_extremes(story)
    if extremes is None:
        if scale == "auto":
            return [
                (
                    ("reward_scale",),
                    "reward_scale: auto needs a story without loops (a loop's total has no bound); "
                    "declare the scale instead: reward_scale: {min: LOWEST_TOTAL, max: HIGHEST_TOTAL}",
                )
            ]
        return []
    if scale == "auto":
        return []
    low, high = (-1.0, 1.0) if scale is None else (scale.min, scale.max)
    index = {sc.id: i for i, sc in reversed(list(enumerate(story.scenes)))}
    problems: list[tuple[KeyPath, str]] = []
    seen: set[tuple[str, ...]] = set()
    for total, path, outside in (
        (*extremes[0], extremes[0][0] < low - 1e-9),
        (*extremes[1], extremes[1][0] > high + 1e-9),
    ):
        if not outside or tuple(path) in seen:
            continue
        seen.add(tuple(path))
        hint = "" if scale is not None else " (or declare the scale the file is written on: reward_scale: {min, max})"
        problems.append(
            (
                ("scenes", index[path[-1]], "id"),
                f"the path {' -> '.join(path)} adds up to {total:+g}; keep every path's total within "
                f"[{low:g}, {high:g}]{hint}",
            )
        )
    return problems


def path_extremes(story: Story) -> tuple[tuple[float, list[str]], tuple[float, list[str]]] | None:
    """The lowest and the highest total task reward over all paths from the start to an ending (ignoring flags),
    each with its path (the scene ids, start first). None for a story with a cycle (its return is bounded only by the
    env's step limit) or a start scene that is not in the story."""
    by_id = story.by_id
    if story.start not in by_id:
        return None

    def successors(sid: str) -> list[str]:
        return [b.scene for c in by_id[sid].choices for b in c.goto if b.scene in by_id]

    # Depth-first, without recursion (a long story must not hit Python's recursion limit): post-order, or a cycle.
    order: list[str] = []
    colour: dict[str, int] = {story.start: 1}  # 1 on the current path, 2 finished
    stack = [(story.start, iter(successors(story.start)))]
    while stack:
        sid, it = stack[-1]
        for nxt in it:
            if colour.get(nxt) == 1:
                return None
            if nxt not in colour:
                colour[nxt] = 1
                stack.append((nxt, iter(successors(nxt))))
                break
        else:
            colour[sid] = 2
            order.append(sid)
            stack.pop()
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    lo_next: dict[str, str | None] = {}
    hi_next: dict[str, str | None] = {}
    for sid in order:  # every scene after the scenes it leads to
        scene = by_id[sid]
        ending = scene.ending is not None
        lo[sid], hi[sid] = (0.0, 0.0) if ending else (np.inf, -np.inf)
        lo_next[sid] = hi_next[sid] = None
        for choice in scene.choices:
            for branch in choice.goto:
                if branch.scene not in by_id:
                    continue
                step = choice.reward + by_id[branch.scene].reward
                if step + lo[branch.scene] < lo[sid]:
                    lo[sid], lo_next[sid] = step + lo[branch.scene], branch.scene
                if step + hi[branch.scene] > hi[sid]:
                    hi[sid], hi_next[sid] = step + hi[branch.scene], branch.scene

    def path(nexts: dict[str, str | None]) -> list[str]:
        out = [story.start]
        while (nxt := nexts[out[-1]]) is not None:
            out.append(nxt)
        return out

    return (float(lo[story.start]), path(lo_next)), (float(hi[story.start]), path(hi_next))


def return_range(story: Story) -> tuple[float, float] | None:
    """Lowest and highest total task reward over all paths from the start to an ending, ignoring flags.

    Returns None for a story with a cycle (its return is bounded only by the env's step limit).
    """
    extremes = path_extremes(story)
    return None if extremes is None else (extremes[0][0], extremes[1][0])


def normalise(story: Story) -> Story:
    """The story with its rewards on the env's scale: divided by its ``reward_scale``'s larger bound (or, for
    ``auto``, by the largest total of any path), so every path's total lies within [-1, 1]; 0 stays 0 and signs and
    ratios are kept. A story without ``reward_scale`` is returned as it is."""
    scale = story.reward_scale
    if scale is None:
        return story
    if scale == "auto":
        bounds = return_range(story)
        divisor = max(abs(bounds[0]), abs(bounds[1])) if bounds is not None else 0.0
        divisor = divisor if np.isfinite(divisor) and divisor > 0 else 1.0
    else:
        divisor = scale.divisor
    scenes = tuple(
        scene.model_copy(
            update={
                "reward": scene.reward / divisor,
                "choices": tuple(c.model_copy(update={"reward": c.reward / divisor}) for c in scene.choices),
            }
        )
        for scene in story.scenes
    )
    out = story.model_copy(update={"scenes": scenes, "reward_scale": None})
    out.__dict__.pop("by_id", None)  # the cached index of the original's scenes
    return out
