"""Constitution files: the shipped ones load, every kind of mistake gives one clear problem, YAML is never run."""

from __future__ import annotations

import hashlib
import pickle

import pytest
from upbringing import constitutions
from upbringing.constitutions import (
    CANONICAL_EVENTS,
    SHIPPED,
    check_constitution_file,
    load_constitution,
    looks_like_constitution,
    parse_constitution,
)
from upbringing.yamlfile import FileError, parse_yaml

BASE = """\
name: test
version: "1"
principles:
  - id: no_stealing
    text: Do not steal.
    tier: hard
    budget: 0.1
    judge:
      rule: stole
"""
# line numbers in BASE: 4 "- id", 5 text, 6 tier, 7 budget, 8 judge, 9 rule


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_constitutions_load_and_validate(name):
    path = constitutions.shipped_path(name)
    assert check_constitution_file(path) == []
    assert check_constitution_file(path, known_events=CANONICAL_EVENTS) == []
    c = load_constitution(name)
    assert c.name == name and c.version and c.principles
    assert c.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert set(c.judges) == set(c.ids)
    assert {p.tier for p in c.principles} >= {"hard", "soft", "aspirational"}
    assert c.run_record()["constitution/sha256"] == c.sha256
    assert looks_like_constitution(parse_yaml(path.read_text(), str(path))[0])
    # a constitution travels to subprocess envs
    assert pickle.loads(pickle.dumps(c)).ids == c.ids


def test_default_constitution_covers_the_developmental_values_across_families():
    c = load_constitution("default")
    events = {n for j in c.judges.values() for n in j.condition.names}
    assert {"harm_other", "deceived", "broke_promise", "stole", "unfair", "betrayed_cooperator"} <= events
    assert {"overharvested", "helped", "object_broken", "tower_fell", "kept_promise"} <= events
    assert any(p.applies.risk for p in c.principles) and any(p.applies.events for p in c.principles)


def test_content_hash_changes_with_the_file(write):
    a = load_constitution(write(BASE, "a.yaml"))
    b = load_constitution(write(BASE.replace("0.1", "0.2"), "b.yaml"))
    assert a.sha256 != b.sha256 and len(a.sha256) == 64


BROKEN = [
    ("broken yaml", BASE.replace("rule: stole", "rule: [stole"), None, 10, "broken YAML"),
    (
        "unknown key",
        BASE.replace("    budget: 0.1", "    budget: 0.1\n    weigth: 2"),
        "principles[0].weigth",
        8,
        "unknown key; expected one of: id, text, tier",
    ),
    (
        "bad tier",
        BASE.replace("tier: hard", "tier: hardest"),
        "principles[0].tier",
        6,
        "'hard', 'soft' or 'aspirational'",
    ),
    (
        "unknown event",
        BASE.replace("rule: stole", "rule: stoel"),
        "principles[0].judge.rule",
        9,
        "unknown event name 'stoel' (did you mean 'stole'?)",
    ),
    (
        "unknown event in a leaf",
        BASE.replace("rule: stole", "rule: {any: [stole, {event: lied}]}"),
        "principles[0].judge.rule.any[1].event",
        9,
        "unknown event name 'lied'",
    ),
    (
        "unknown layer event",
        BASE.replace("    judge:", "    applies: {events: [harm_othr]}\n    judge:"),
        "principles[0].applies.events[0]",
        8,
        "did you mean 'harm_other'",
    ),
    ("duplicate id", BASE + BASE.split("principles:\n")[1], "principles[1].id", 10, "duplicate principle id"),
    (
        "negative budget",
        BASE.replace("budget: 0.1", "budget: -0.5"),
        "principles[0].budget",
        7,
        "greater than or equal to 0",
    ),
    (
        "bad operator",
        BASE.replace("rule: stole", "rule: {event: stole, op: '=>', value: 1}"),
        "principles[0].judge.rule.op",
        9,
        "unknown comparison operator '=>'",
    ),
    (
        "non-numeric value",
        BASE.replace("rule: stole", "rule: {event: stole, value: lots}"),
        "principles[0].judge.rule.value",
        9,
        "expected a number",
    ),
    (
        "two forms in one condition",
        BASE.replace("rule: stole", "rule: {all: [stole], any: [stole]}"),
        "principles[0].judge.rule",
        9,
        "exactly one of event, all, any, not",
    ),
    ("empty list", BASE.replace("rule: stole", "rule: {any: []}"), "principles[0].judge.rule.any", 9, "non-empty list"),
    ("hard without budget", BASE.replace("    budget: 0.1\n", ""), "principles[0].tier", 6, "needs a budget"),
    (
        "budget on a soft principle",
        BASE.replace("tier: hard", "tier: soft"),
        "principles[0].budget",
        7,
        "only for hard principles",
    ),
    (
        "no judge kind",
        BASE.replace("      rule: stole", "      cost: indicator"),
        "principles[0].judge",
        8,
        "exactly one of rule or model",
    ),
    (
        "rule and model",
        BASE.replace("rule: stole", "rule: stole\n      model: {type: embedding}"),
        "principles[0].judge",
        8,
        "exactly one of rule or model",
    ),
    (
        "bad model judge type",
        BASE.replace("rule: stole", "model: {type: oracle}"),
        "principles[0].judge.model.type",
        9,
        "'embedding', 'classifier' or 'nli'",
    ),
    (
        "missing model path",
        BASE.replace("rule: stole", "model: {type: classifier, model: ./nowhere}"),
        "principles[0].judge.model.model",
        9,
        "does not exist",
    ),
    (
        "classifier without model",
        BASE.replace("rule: stole", "model: {type: classifier}"),
        "principles[0].judge.model.type",
        9,
        "needs a model",
    ),
    (
        "magnitude of a negation",
        BASE.replace("rule: stole", "rule: {not: stole}\n      cost: magnitude"),
        "principles[0].judge.cost",
        10,
        "names an event outside 'not'",
    ),
    (
        "bad risk level",
        BASE.replace("    judge:", "    applies: {risk: [extreme]}\n    judge:"),
        "principles[0].applies.risk[0]",
        8,
        "'low', 'medium' or 'high'",
    ),
    (
        "layer list given as a string",
        BASE.replace("    judge:", "    applies: {families: moral}\n    judge:"),
        "principles[0].applies.families",
        8,
        "a list",
    ),
    ("bad id", BASE.replace("id: no_stealing", "id: No Stealing"), "principles[0].id", 4, "lower_snake_case"),
    ("missing version", BASE.replace('version: "1"\n', ""), "version", None, "missing required key"),
    ("float version", BASE.replace('version: "1"', "version: 1.10"), "version", 2, 'version: "1.0"'),
    ("no principles", 'name: test\nversion: "1"\nprinciples: []\n', "principles", 3, "at least one principle"),
    (
        "duplicate yaml key",
        BASE.replace("    budget: 0.1", "    budget: 0.1\n    budget: 0.2"),
        "principles[0].budget",
        8,
        "duplicate key",
    ),
    ("not a mapping", "- just\n- a list\n", None, None, "expected a mapping"),
]


@pytest.mark.parametrize(("text", "key", "line", "fragment"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_each_broken_file_gives_one_clear_problem(write, known_events, text, key, line, fragment):
    path = write(text)
    problems = check_constitution_file(path, known_events=known_events | {"harm_other"})
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.file == str(path)
    assert problem.key == key
    if line is not None:
        assert problem.line == line
    assert fragment in problem.message, problem.message
    with pytest.raises(FileError) as err:
        load_constitution(path, known_events=known_events | {"harm_other"})
    assert err.value.problems == problems
    assert f"{path}" in str(err.value) and (key or "") in str(err.value)


def test_every_problem_in_a_file_is_reported_with_its_own_line(write, known_events):
    text = BASE.replace("tier: hard", "tier: hardest").replace("rule: stole", "rule: stoel")
    problems = check_constitution_file(write(text), known_events)
    # schema errors come first (rules are compiled once the structure is right)
    assert [(p.key, p.line) for p in problems] == [("principles[0].tier", 6)]
    text = BASE.replace("rule: stole", "rule: {all: [stoel, {event: stole, op: '~'}]}")
    text += BASE.split("principles:\n")[1].replace("no_stealing", "second").replace("0.1", "-1")
    problems = check_constitution_file(write(text), known_events)
    assert [p.key for p in problems] == ["principles[1].budget"]
    text = BASE.replace("rule: stole", "rule: {all: [stoel, {event: stole, op: '~'}]}")
    text += BASE.split("principles:\n")[1]
    problems = check_constitution_file(write(text), known_events)
    assert [(p.key, p.line) for p in problems] == [
        ("principles[0].judge.rule.all[0]", 9),
        ("principles[0].judge.rule.all[1].op", 9),
        ("principles[1].id", 10),
    ]


def test_yaml_is_never_executed(write, tmp_path):
    marker = tmp_path / "executed"
    text = BASE.replace("Do not steal.", f'!!python/object/apply:os.system ["touch {marker}"]')
    problems = check_constitution_file(write(text))
    assert not marker.exists()
    assert len(problems) == 1 and "broken YAML" in problems[0].message and problems[0].line == 5
    text = BASE.replace("rule: stole", "rule: !!python/name:os.system")
    assert "broken YAML" in check_constitution_file(write(text))[0].message


def test_event_names_are_checked_against_the_given_names(write):
    path = write(BASE)
    assert check_constitution_file(path) == []  # default: canonical + registered names
    problems = check_constitution_file(path, known_events={"harm_other"})
    assert [(p.key, p.line) for p in problems] == [("principles[0].judge.rule", 9)]
    assert "unknown event name 'stole'" in problems[0].message


def test_missing_file_and_shipped_names(tmp_path):
    assert check_constitution_file(tmp_path / "nope.yaml")[0].message.startswith("file not found")
    (problem,) = check_constitution_file("defualt")
    assert problem.message == (
        "unknown constitution (did you mean 'default'?); shipped: default, minimal, layered, or give a path to a YAML file"
    )
    with pytest.raises(FileError, match="file not found"):
        load_constitution(tmp_path / "nope.yaml")
    assert load_constitution("minimal").path.endswith("minimal.yaml")


def test_parse_from_text_and_defaults():
    c = parse_constitution(BASE.replace("budget: 0.1", "budget: 0.1\n    priority: 3"))
    (p,) = c.principles
    assert (p.id, p.tier, p.budget, p.priority, c.version) == ("no_stealing", "hard", 0.1, 3, "1")
    assert c.lagrangian.method == "gradient" and c.lagrangian.lr > 0
    soft = parse_constitution(BASE.replace("tier: hard", "tier: soft").replace("    budget: 0.1\n", ""))
    assert soft.principles[0].coefficient == 1.0
    assert parse_constitution(BASE.replace('version: "1"', "version: 2")).version == "2"


def test_the_example_in_the_format_guide_is_valid(write):
    guide = (constitutions.shipped_path("default").parent / "FORMAT.md").read_text(encoding="utf-8")
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    c = load_constitution(write(example))
    assert [p.tier for p in c.principles] == ["hard", "hard", "soft", "aspirational", "soft"]
    assert c.lagrangian.lambda_max == 20.0 and c.judges["kindness"].needs_text


@pytest.mark.parametrize(
    "rule, message",
    [
        ("{event: stole, op: [1]}", "unknown comparison operator [1]"),
        (
            "{event: stole, value: 99999999999999999999999999999999999999999999999999999999999999999999999999999999"
            + "9" * 300
            + "}",
            "expected a number (finite)",
        ),
        ("{event: stole, value: .nan}", "expected a number (finite)"),
        ("{event: [stole]}", "expected an event name (a string), got ['stole']"),
        ("{not: {not: {all: 5}}}", "expected a non-empty list of conditions, got 5"),
    ],
)
def test_rules_of_any_shape_give_one_problem(write, rule, message):
    (problem,) = check_constitution_file(write(BASE.replace("rule: stole", f"rule: {rule}")))
    assert message in problem.message and problem.line == 9
