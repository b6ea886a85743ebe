"""Property-based fuzzing of everything a user hands the ``upbringing`` command: run configs, constitutions, story
files and command lines, generated from the shipped files and the schemas and then mutated.

For every case: the exit status is 0 or 1 (never 2, an internal error), nothing printed holds a traceback, a
rejected config leaves no run folder, and the case finishes in bounded time. Everything runs in-process through
``main([...])``; accepted configs are only checked (``upbringing check``), never trained: ``train`` runs only on
configs that validation rejects. Hypothesis runs derandomized (the same cases on every run) and keeps no example
database, so CI is reproducible; the case counts below add up to well over 1,000 per run.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from upbringing.constitutions.constitution import CANONICAL_EVENTS, ConstitutionFile
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.cli import build_parser, main
from upbringing.curriculum.config import RunConfig
from upbringing.envs.moral.story import Story
from upbringing.yamlfile import FileError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if "axelrod" not in p.name)  # axelrod: 12 s import
CONSTITUTIONS = [*sorted((ROOT / "constitutions").glob("*.yaml")), ROOT / "configs" / "constitutions" / "fairness.yaml"]
STORIES = sorted((ROOT / "envs" / "moral" / "stories").glob("*.yaml"))

CASES = {"config": 330, "constitution": 260, "story": 300, "argv": 260}
SECONDS_PER_CASE = 20.0  # bounded time: far above any real case (tens of ms), far below a hang


# Exploring beyond CI's cases: UPBRINGING_FUZZ_SCALE=20 runs 20 times as many, new ones on every run.
SCALE = float(os.environ.get("UPBRINGING_FUZZ_SCALE", "1"))


def fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=int(n * SCALE),
        derandomize=SCALE == 1,  # the same cases on every run: reproducible CI
        database=None,  # no example database written into the repository
        deadline=None,  # wall time is asserted per case below, with room for a loaded machine
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


def run_cli(argv: list[str]) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - start


def assert_clean(argv: list[str], code: int, out: str, err: str, seconds: float) -> None:
    said = out + err
    if code == 2:  # show the internal error's full report, which the command wrote to a file
        report = said.rpartition("the full report is in ")[2].partition(";")[0]
        detail = Path(report).read_text() if report and Path(report).exists() else ""
        pytest.fail(f"internal error for {argv}:\n{said}\n{detail}")
    assert code in (0, 1), (argv, code, said)
    assert "Traceback" not in said, (argv, said)
    assert seconds < SECONDS_PER_CASE, (argv, seconds)


# --------------------------------------------------------------------------------------------------- values
WORDS = [
    "",
    "x",
    "default",
    "minimal",
    "layered",
    "defualt",
    "off",
    "online",
    "lm",
    "sb3_ppo",
    "tiny",
    "mean",
    "success",
    "return",
    "sequential",
    "direct",
    "harm_other",
    "stole",
    "helped",
    "physics/ObjectPermanence-v0",
    "physics/Support-v0",
    "social/IteratedPD-v0",
    "social/IteratedPDSolo-v0",
    "social/PublicGoods-v0",
    "moral/Stories-v0",
    "moral/StoryFiles-v0",
    "tit_for_tat",
    "always_defect",
    "../nowhere.yaml",
    "/nonexistent/file.yaml",
    "base.yaml",
    "quickstart.yaml",
    "constitutions/fairness.yaml",
    "~",
    "<<",
    "a" * 300,
    "é✓ ünïcode",
    "a/b",
    "with space",
]
STRINGS = {  # plausible strings for some keys of the schemas (any other string key draws from WORDS)
    "name": ["fuzz", "a", "permanence", "stories", "", "a/b", "with space"],
    "env": [w for w in WORDS if "/" in w and "-v0" in w] + ["physics/Nope-v0", ""],
    "id": ["fuzz", "kitchen", "s0", "Not An Id", ""],
    "start": ["s0", "kitchen", "nowhere"],
    "scene": ["s0", "kitchen", "nowhere"],
    "text": ["Some text.", ""],
    "title": ["Fuzz", ""],
    "version": ["1", "1.0", ""],
}
NUMBERS = [0, 1, -1, 2, 3, 5, 7, 64, 1000, 2**31, 2**63, 10**30, -(10**30), 0.5, -0.5, 1.5, 1e-9, 1e300, -1e300]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from(WORDS),
    st.text(max_size=12),
    st.dates(),
)


def values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Any value a file could hold: scalars, small lists and mappings (with keys from the schema, or not)."""
    return _values(tuple(keys))


@functools.cache  # a strategy is built once: building recursive strategies costs more than drawing from them
def _values(keys: tuple[str, ...]) -> st.SearchStrategy[Any]:
    key = st.one_of(st.sampled_from(keys or ("x",)), st.text(max_size=8))
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(key, inner, max_size=3)),
        max_leaves=6,
    )


def schema_keys(model: type[BaseModel]) -> list[str]:
    """Every property name anywhere in a pydantic model's JSON schema."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "properties" and isinstance(v, dict):
                    found.update(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(model.model_json_schema())
    return sorted(found)


def from_schema(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Documents generated from a pydantic model's JSON schema: its keys and types, with values in and out of range
    and, now and then, of another type altogether."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    junk = values(schema_keys(model))

    def gen(node: dict[str, Any], depth: int, key: str = "") -> st.SearchStrategy[Any]:
        if "$ref" in node:
            return gen(defs[node["$ref"].rpartition("/")[2]], depth, key)
        for union in ("anyOf", "oneOf", "allOf"):
            if union in node:
                return st.one_of([gen(n, depth, key) for n in node[union]])
        if "const" in node:
            return st.just(node["const"])
        if "enum" in node:
            return st.sampled_from(node["enum"])
        kind = node.get("type")
        if depth > 5 or kind is None:
            return junk
        if kind == "object":
            props = node.get("properties", {})
            if not props:
                return st.dictionaries(st.sampled_from(WORDS[:20]), junk, max_size=3)
            # required keys and tags (a discriminated union's `kind`) always; the others now and then
            required = set(node.get("required", [])) | {k for k, v in props.items() if "const" in v}
            return st.fixed_dictionaries(
                {k: gen(v, depth + 1, k) for k, v in props.items() if k in required},
                optional={k: gen(v, depth + 1, k) for k, v in props.items() if k not in required},
            )
        if kind == "array":
            item = node.get("items") or (node.get("prefixItems") or [{}])[0]
            return st.lists(gen(item, depth + 1, key), max_size=3)
        if kind == "integer":
            lo = node.get("minimum", node.get("exclusiveMinimum", -5))
            hi = node.get("maximum", node.get("exclusiveMaximum", 5000))
            edges = st.sampled_from([lo - 1, lo, lo + 1, hi - 1, hi, hi + 1])
            inside = st.integers(lo + 1, min(hi - 1, lo + 5000)) if hi - lo > 2 else st.just(lo)
            return st.one_of(inside, inside, inside, edges)
        if kind == "number":
            return st.one_of(st.floats(-1e3, 1e3), st.floats(0, 1), st.sampled_from(NUMBERS))
        if kind == "boolean":
            return st.booleans()
        if kind == "string":
            return st.sampled_from(STRINGS.get(key, WORDS))
        return junk

    return gen(schema, 0)


def paths(doc: Any, at: tuple = ()) -> list[tuple]:
    """Every key path in a document (the root included)."""
    out = [at]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*at, i))
    return out


def get(doc: Any, path: tuple) -> Any:
    for part in path:
        doc = doc[part]
    return doc


OPS = ["replace", "replace", "perturb", "delete", "add", "swap", "empty", "duplicate", "wrap"]


@st.composite
def mutated(draw: Any, docs: list[Any], keys: list[str], max_ops: int = 3) -> Any:
    """A shipped document with 1 to ``max_ops`` mutations at random places."""
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    junk = values(keys)
    for _ in range(draw(st.integers(1, max_ops))):
        every = paths(doc)
        leaves = [p for p in every if not isinstance(get(doc, p), dict | list)]
        where = draw(st.sampled_from(leaves if leaves and draw(st.integers(0, 2)) else every))
        op = draw(st.sampled_from(OPS))
        node = get(doc, where)
        parent: Any = get(doc, where[:-1]) if where else None
        if op == "replace" or (op == "perturb" and not isinstance(node, int | float)) or not where:
            new = draw(junk)
            if not where:
                doc = new if op == "replace" and draw(st.integers(0, 9)) == 0 else doc
                continue
        elif op == "perturb":
            new = draw(st.sampled_from([0, -node, node + 1, node - 1, node * 10, node * 1000, node / 3, -1, 10**12]))
        elif op == "delete":
            if isinstance(parent, dict):
                del parent[where[-1]]
            else:
                parent.pop(where[-1])
            continue
        elif op == "add":
            if isinstance(node, dict):
                node[draw(st.sampled_from(keys))] = draw(junk)
            elif isinstance(node, list):
                node.append(draw(junk) if not node or draw(st.booleans()) else copy.deepcopy(node[0]))
            continue
        elif op == "swap":  # a value from elsewhere in the document: plausible types in the wrong places
            new = copy.deepcopy(get(doc, draw(st.sampled_from(paths(doc)))))
        elif op == "empty":
            new = type(node)() if isinstance(node, dict | list | str) else None
        elif op == "duplicate":
            if isinstance(parent, list):
                parent.insert(where[-1], copy.deepcopy(node))
            continue
        else:  # wrap
            new = [node] if draw(st.booleans()) else {"x": node}
        parent[where[-1]] = new
    return doc


@st.composite
def tweaked(draw: Any, docs: list[Any]) -> Any:
    """A shipped document with one or two values changed for others of the same type: documents that mostly pass
    the schema and so reach the deeper checks (env arguments, populations, constitutions, story graphs)."""
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    for _ in range(draw(st.integers(1, 2))):
        leaves = [p for p in paths(doc) if p and not isinstance(get(doc, p), dict | list)]
        if not leaves:
            break
        where = draw(st.sampled_from(leaves))
        old = get(doc, where)
        if isinstance(old, bool):
            new: Any = not old
        elif isinstance(old, int):
            new = draw(st.sampled_from([0, 1, 2, -1, old + 1, old - 1, old * 2, old * 100, 10**9, 2**40]))
        elif isinstance(old, float):
            new = draw(st.sampled_from([0.0, -old, old / 2, old * 2, old + 1, 1.0, -1.0, 1e9, 1e-9]))
        elif isinstance(old, str):
            new = draw(st.one_of(st.sampled_from(WORDS), st.just(old[:-1]), st.just(old + old)))
        else:
            new = draw(SCALARS)
        get(doc, where[:-1])[where[-1]] = new
    return doc


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@st.composite
def text_mutated(draw: Any, texts: st.SearchStrategy[str]) -> str:
    """YAML text with a few character-level edits: the broken YAML, tabs and duplicate keys people type."""
    text = draw(texts)
    for _ in range(draw(st.integers(1, 3))):
        lines = text.splitlines() or [""]
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["insert", "delete", "dup", "indent", "dedent", "truncate"]))
        line = lines[i]
        if edit == "insert":
            at = draw(st.integers(0, len(line)))
            ch = draw(
                st.sampled_from(
                    [
                        ":",
                        "-",
                        "[",
                        "]",
                        "{",
                        "}",
                        "&a",
                        "*a",
                        "!",
                        "|",
                        ">",
                        "'",
                        '"',
                        "#",
                        ",",
                        "?",
                        "\t",
                        " ",
                        "%",
                        "@",
                        "`",
                        "\\",
                        "\x00",
                        "<<: 1",
                    ]
                )
            )
            lines[i] = line[:at] + ch + line[at:]
        elif edit == "delete" and line:
            a = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:a] + line[a + draw(st.integers(1, 4)) :]
        elif edit == "dup":
            lines.insert(i, line)
        elif edit == "indent":
            lines[i] = "  " + line
        elif edit == "dedent":
            lines[i] = line.lstrip()
        elif edit == "truncate":
            lines = lines[:i]
        text = "\n".join(lines) + "\n"
    return text


@functools.cache
def _parsed(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_docs(files: list[Path]) -> list[Any]:
    return [_parsed(p) for p in files]


def documents(
    files: list[Path], model: type[BaseModel], extra: Sequence[st.SearchStrategy[Any]] = ()
) -> st.SearchStrategy[str]:
    """YAML texts: shipped files mutated, documents generated from the schema, and text-level edits of both."""
    docs = load_docs(files)
    keys = schema_keys(model)
    edited = st.one_of(mutated(docs, keys), tweaked(docs)).map(dump)
    as_text = st.one_of(edited, edited, from_schema(model).map(dump), *(s.map(dump) for s in extra))
    broken = text_mutated(st.one_of(st.sampled_from([p.read_text() for p in files]), as_text))
    return st.one_of(as_text, as_text, as_text, as_text, broken)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: Any) -> Path:
    """A copy of configs/ (so ``extends: base.yaml`` and relative constitution paths resolve) to write cases into."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(ROOT / "configs", root / "configs")
    return root


# ----------------------------------------------------------------------------------------------- run configs
def test_fuzzed_run_configs_are_checked_or_rejected_cleanly(workspace: Path) -> None:
    count = 0
    path = workspace / "configs" / "fuzz.yaml"
    run_dir = workspace / "run"

    @fuzz_settings(CASES["config"])
    @given(documents(CONFIGS, RunConfig))
    def case(text: str) -> None:
        nonlocal count
        count += 1
        path.write_text(text, encoding="utf-8")
        code, out, err, seconds = run_cli(["check", str(path)])
        assert_clean(["check", text], code, out, err, seconds)
        if code == 1:  # rejected: train must reject it the same way, and leave no run folder behind
            code, out, err, seconds = run_cli(["train", str(path), "--run-dir", str(run_dir), "--quiet"])
            assert_clean(["train", text], code, out, err, seconds)
            assert code == 1 and not run_dir.exists(), (text, out, err)
            assert err.startswith("error: ") and all(line.startswith("error: ") for line in err.splitlines())

    case()
    assert count >= CASES["config"] * min(SCALE, 1)


# ---------------------------------------------------------------------------------------------- constitutions
@functools.cache
def rules() -> st.SearchStrategy[Any]:
    events = st.sampled_from([*sorted(CANONICAL_EVENTS)[:6], "no_such_event", "", "Harm_Other"])
    leaf = st.one_of(
        events,
        st.fixed_dictionaries(
            {"event": st.one_of(events, SCALARS)},
            optional={"op": st.sampled_from([">", ">=", "<", "==", "!=", "=>", 1, None, [">"]]), "value": SCALARS},
        ),
        SCALARS,
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.fixed_dictionaries({"all": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"any": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"not": inner}),
            st.dictionaries(st.sampled_from(["all", "any", "not", "event", "x"]), inner, max_size=3),
        ),
        max_leaves=8,
    )


@st.composite
def constitutions_with_rules(draw: Any) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(load_docs(CONSTITUTIONS))))
    for principle in doc["principles"]:
        if draw(st.booleans()):
            principle["judge"] = {"rule": draw(rules())}
    return doc


def test_fuzzed_constitutions_are_checked_cleanly(workspace: Path) -> None:
    count = 0
    path = workspace / "constitution.yaml"

    @fuzz_settings(CASES["constitution"])
    @given(documents(CONSTITUTIONS, ConstitutionFile, [constitutions_with_rules()]))
    def case(text: str) -> None:
        nonlocal count
        count += 1
        path.write_text(text, encoding="utf-8")
        code, out, err, seconds = run_cli(["check", str(path)])
        assert_clean(["check", text], code, out, err, seconds)

    case()
    assert count >= CASES["constitution"] * min(SCALE, 1)


# ------------------------------------------------------------------------------------------------ story files
@st.composite
def rarely(draw: Any, common: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
    """Mostly ``common``, about one time in eight ``odd`` (``one_of`` would explore both about equally)."""
    return draw(odd if draw(st.sampled_from([False] * 7 + [True])) else common)


@st.composite
def story_graphs(draw: Any) -> dict[str, Any]:
    """Small stories drawn as graphs: scenes, choices that lead anywhere (loops, dead ends, now and then an unknown
    id), rewards on any scale with or without a declared ``reward_scale``: mostly valid files, so that they reach
    the graph checks (reachability, cycles, path totals) and the normalisation."""
    n = draw(st.integers(1, 6))
    ids = [f"s{i}" for i in range(n)]
    scale = draw(
        rarely(
            st.one_of(st.none(), st.just("auto"), st.fixed_dictionaries({"min": st.just(-9), "max": st.just(12)})),
            st.one_of(
                st.fixed_dictionaries({"min": st.sampled_from([-1, 0, 5]), "max": st.sampled_from([1, 0, -3])}), SCALARS
            ),
        )
    )
    scaled = scale is not None
    target = rarely(st.sampled_from(ids[1:] or ids), st.sampled_from([*ids, "nowhere"]))
    reward = (
        rarely(st.sampled_from([0, 3, -2, 12, -9, 7]), st.floats(-20, 20))
        if scaled
        else rarely(st.sampled_from([0, 0.1, -0.2, 0.5, -0.5, 0.3]), st.sampled_from([1.5, -2, 0.9]))
    )
    scenes = []
    for k, sid in enumerate(ids):
        scene: dict[str, Any] = {"id": sid, "text": f"Scene {sid}."}
        last = k == n - 1
        if last or draw(st.integers(0, 3)) == 0:
            scene["ending"] = draw(rarely(st.sampled_from(["good", "mixed", "bad"]), st.just("great")))
        if k and draw(st.booleans()):
            scene["reward"] = draw(reward)
        if "ending" not in scene or draw(st.integers(0, 9)) == 0:
            choices = []
            for j in range(draw(st.integers(1, 4))):
                choice: dict[str, Any] = {"text": f"Choice {j}.", "goto": draw(target)}
                if draw(st.booleans()):
                    choice["reward"] = draw(reward)
                if draw(st.integers(0, 4)) == 0:
                    chance = draw(rarely(st.sampled_from([0.5, 0.25]), st.sampled_from([1.0, 0])))
                    choice["goto"] = [{"scene": draw(target), "chance": chance}, {"scene": draw(target)}]
                if draw(st.integers(0, 3)) == 0:
                    name = draw(rarely(st.sampled_from(["stole", "helped"]), st.just("flying")))
                    choice["annotations"] = {
                        name: draw(rarely(st.sampled_from([1, 0.5]), st.sampled_from([0, -1, 11])))
                    }
                if draw(st.integers(0, 4)) == 0:
                    choice["set"] = {"flag": True}
                if j and draw(st.integers(0, 4)) == 0:
                    choice["when"] = {draw(rarely(st.just("flag"), st.just("other"))): draw(st.booleans())}
                choices.append(choice)
            scene["choices"] = choices
        scenes.append(scene)
    story: dict[str, Any] = {
        "id": "fuzz",
        "title": "Fuzz",
        "start": draw(rarely(st.just("s0"), st.just("nope"))),
        "scenes": scenes,
    }
    if scaled:
        story["reward_scale"] = scale
    return story


def test_fuzzed_story_files_are_checked_cleanly(workspace: Path) -> None:
    count = 0
    path = workspace / "story.yaml"

    @fuzz_settings(CASES["story"])
    @given(documents(STORIES, Story, [story_graphs(), story_graphs()]))
    def case(text: str) -> None:
        nonlocal count
        count += 1
        path.write_text(text, encoding="utf-8")
        code, out, err, seconds = run_cli(["check", str(path)])
        assert_clean(["check", text], code, out, err, seconds)
        if code == 0 and "scenes:" in text:  # a story that passes loads with every path's total within [-1, 1]
            from upbringing.envs.moral.storyfile import load_story_file
            from upbringing.envs.moral.storygraph import return_range

            bounds = return_range(load_story_file(path))
            assert bounds is None or (bounds[0] >= -1 - 1e-9 and bounds[1] <= 1 + 1e-9), (text, bounds)

    case()
    assert count >= CASES["story"] * min(SCALE, 1)


# ------------------------------------------------------------------------------------------------ command lines
@pytest.fixture(scope="module")
def places(workspace: Path) -> dict[str, Path]:
    """Paths a command line may name: shipped files, missing ones, folders, and run folders in every state that
    is not trainable (no config, broken config, damaged checkpoints, a finished run, truncated files)."""
    w = workspace / "places"
    w.mkdir()
    config = (ROOT / "configs" / "quickstart_sb3.yaml").resolve()
    resolved = yaml.safe_dump(load_config(config).model_dump(mode="json"), sort_keys=False)

    def run_folder(name: str, files: Mapping[str, str | bytes]) -> Path:
        folder = w / name
        for rel, content in files.items():
            f = folder / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(content if isinstance(content, bytes) else content.encode())
        folder.mkdir(exist_ok=True)
        return folder

    damaged_checkpoint = {
        "config.yaml": resolved,
        "checkpoints/chunk-000001/engine.json": '{"chunk": 1}',
        "checkpoints/chunk-000001/manifest.json": json.dumps(
            {"format": 1, "files": {"engine.json": {"size": 999, "sha256": "0" * 64}}}
        ),
        "checkpoints/latest.json": '{"checkpoint": "chunk-000001"}',
        "events.jsonl": '{"kind": "metrics", "step": 0, "metrics": {}}\n{"kind": "metr',
    }
    return {
        "config": config,
        "constitution": ROOT / "constitutions" / "default.yaml",
        "story": STORIES[0],
        "missing": w / "missing.yaml",
        "dir": run_folder("empty", {}),
        "binary": run_folder("bin", {"x.yaml": b"\xff\xfe\x00garbage"}) / "x.yaml",
        "no_config": run_folder("no_config", {"events.jsonl": ""}),
        "broken_config": run_folder("broken_config", {"config.yaml": "stages: [\n", "summary.json": "{"}),
        "damaged": run_folder("damaged", damaged_checkpoint),
        "legacy_garbage": run_folder(
            "legacy",
            {
                "config.yaml": resolved,
                "checkpoints/chunk-000002/engine.json": "{}",
                "checkpoints/chunk-000002/agent/agent.json": "[]",
            },
        ),
        "finished": run_folder(
            "finished",
            {**damaged_checkpoint, "summary.json": '{"stages": [', "retention.json": "null", "events.jsonl": "\n"},
        ),
        "feedback": run_folder("feedback", {**damaged_checkpoint, "feedback/stories/queries.jsonl": '{"a": 1}\n{'}),
    }


@st.composite
def overrides(draw: Any) -> str:
    keys = [
        "seed",
        "name",
        "stages",
        "stages.0",
        "stages.0.budget",
        "stages.9.budget",
        "stages.0.kwargs.n_players",
        "curriculum.n_envs",
        "tracking.wandb",
        "agent",
        "agent.kind",
        "constitution",
        "stages[0].env",
        "a..b",
        "",
        "x.0.y",
        "stages.0.levels.0",
        "curriculum",
    ]
    raw = draw(
        st.one_of(
            st.sampled_from(
                [
                    "5",
                    "5.0",
                    "true",
                    "[",
                    "{a: 1}",
                    "",
                    "off",
                    "!!python/name:os.system",
                    "&a [*a]",
                    "2024-02-30",
                    "defualt",
                    "-1",
                    "1e999",
                    "[1, 2]",
                ]
            ),
            st.text(max_size=8),
        )
    )
    return f"{draw(st.sampled_from(keys))}={raw}" if draw(st.integers(0, 9)) else draw(st.text(max_size=6))


@st.composite
def command_lines(draw: Any, places: dict[str, Path]) -> list[str]:
    def place(*names: str) -> str:
        return str(places[draw(st.sampled_from(names or list(places)))])

    junk = st.one_of(st.sampled_from(["--json", "--quiet", "-h", "--nope", "-", "--", "=", "x=1"]), st.text(max_size=6))
    runs = [
        "missing",
        "dir",
        "binary",
        "no_config",
        "broken_config",
        "damaged",
        "legacy_garbage",
        "finished",
        "feedback",
    ]
    command = draw(
        st.sampled_from(["train", "resume", "check", "envs", "eval", "compare", "report", "feedback", "other"])
    )
    if command == "train":
        argv = ["train", place(), *draw(st.lists(overrides(), max_size=3))]
        if draw(st.booleans()):
            argv += ["--run-dir", place("missing", "dir", "no_config", "binary")]
    elif command == "resume":
        argv = ["resume", place(*runs)]
    elif command == "check":
        argv = ["check", *(place() for _ in range(draw(st.integers(0, 3))))]
    elif command == "envs":
        argv = ["envs"]
    elif command == "eval":
        argv = ["eval", place(*runs)]
        if draw(st.booleans()):
            argv += ["--suite", draw(st.sampled_from(["heldout", "opponents", "physics", "nope"]))]
        if draw(st.booleans()):
            argv += ["--episodes", draw(st.sampled_from(["0", "-3", "2", "x", "1e9"]))]
        if draw(st.booleans()):
            argv += [
                "--checkpoint",
                place("dir", "missing")
                if draw(st.booleans())
                else str(places["damaged"] / "checkpoints" / "chunk-000001"),
            ]
        if draw(st.booleans()):
            argv += ["--checkpoint", str(places["legacy_garbage"] / "checkpoints" / "chunk-000002")]
        argv += ["--no-axelrod"]
    elif command == "compare":
        argv = ["compare", *(place(*runs) for _ in range(draw(st.integers(0, 3))))]
        for flag, choices in (
            ("--threshold", ["nan", "0.5", "x", "inf"]),
            ("--horizon", ["0", "-1", "nan", "100"]),
            ("--confidence", ["0", "1", "2", "0.9", "nan"]),
            ("--group-by", ["name", "x"]),
            ("--stage", ["stories", "nope"]),
        ):
            if draw(st.integers(0, 3)) == 0:
                argv += [flag, draw(st.sampled_from(choices))]
    elif command == "report":
        argv = ["report", place(*runs), "--no-wandb"]
    elif command == "feedback":
        argv = ["feedback", place(*runs)]
    else:
        argv = draw(st.lists(st.one_of(junk, st.sampled_from(["train", "check", "--help", "frobnicate"])), max_size=3))
    argv += draw(st.lists(junk, max_size=2))
    return argv


def would_train(argv: list[str]) -> bool:
    """Whether ``argv`` is a ``train`` that validation accepts (the fuzz never trains for real)."""
    if not argv or argv[0] != "train":
        return False
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = build_parser().parse_args(argv)
    except SystemExit:
        return False
    if any(a in ("-h", "--help") for a in argv):
        return False
    try:
        load_config(args.config, args.overrides)
    except FileError:
        return False
    return True


def test_fuzzed_command_lines_exit_0_or_1_without_traceback(places: dict[str, Path], monkeypatch: Any) -> None:
    count = 0
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # `feedback` reads answers from the terminal

    @fuzz_settings(CASES["argv"])
    @given(command_lines(places))
    def case(argv: list[str]) -> None:
        nonlocal count
        count += 1
        if would_train(argv):
            argv = ["check", argv[1]]
        code, out, err, seconds = run_cli(argv)
        assert_clean(argv, code, out, err, seconds)
        if code == 1 and argv[:1] == ["train"] and "--run-dir" in argv:
            target = Path(argv[argv.index("--run-dir") + 1])
            assert target == places["dir"] or not target.exists() or target.is_file() or target == places["no_config"]

    case()
    assert count >= CASES["argv"] * min(SCALE, 1)


def test_stages_of_the_wrong_type_give_one_line_and_exit_1(tmp_path: Path) -> None:
    """The cases of issue 15: `stages: 5` (5.0, true, and the override stages=5) gave a traceback."""
    shutil.copy(ROOT / "configs" / "base.yaml", tmp_path / "base.yaml")
    for value, found in (("5", "5"), ("5.0", "5.0"), ("true", "True"), ("x", "'x'"), ("{a: 1}", "a mapping")):
        path = tmp_path / "c.yaml"
        path.write_text(f"extends: base.yaml\nname: c\nstages: {value}\n")
        expected = f"{path}:3: stages: Input should be a valid list (got {found})"
        for command in (["check", str(path)], ["train", str(path), "--run-dir", str(tmp_path / "run")]):
            code, out, err, _ = run_cli(command)
            assert code == 1 and "Traceback" not in out + err and not (tmp_path / "run").exists()
            assert [line.removeprefix("error: ") for line in err.splitlines()] == [expected]
    quickstart = ROOT / "configs" / "quickstart.yaml"
    line = quickstart.read_text().splitlines().index("stages:") + 1  # the override is reported where the key is
    code, out, err, _ = run_cli(["train", str(quickstart), "stages=5", "--run-dir", str(tmp_path / "run")])
    assert code == 1 and err.splitlines() == [
        f"error: {quickstart}:{line}: stages: Input should be a valid list (got 5)"
    ]


def test_an_internal_error_prints_one_line_and_where_the_report_is(tmp_path: Path, monkeypatch: Any) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("deep inside")

    monkeypatch.setattr("upbringing.envs.list_specs", broken)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    code, out, err, _ = run_cli(["envs"])
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("internal error: ZeroDivisionError: deep inside (the full report is in ")
    report = Path(err.partition("the full report is in ")[2].partition(";")[0])
    assert report.parent == tmp_path and "Traceback" in report.read_text() and "deep inside" in report.read_text()
