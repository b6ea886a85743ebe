"""Reading a user's YAML: everything a later step could trip over is refused with one line naming file, line, key."""

from __future__ import annotations

import pytest
from upbringing.yamlfile import MAX_DEPTH, FileError, Problem, parse_value, parse_yaml


def problems(text: str) -> list[str]:
    with pytest.raises(FileError) as err:
        parse_yaml(text, "f.yaml")
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: 1\n1: 2\n", "f.yaml:2: a key must be a name; '1' reads as a number: quote it"),
        ("flags:\n  on: true\n", "f.yaml:2: flags: a key must be a name; 'on' reads as true/false: quote it"),
        ("a: {null: 1}\n", "f.yaml:1: a: a key must be a name; 'null' reads as null: quote it"),
        ("? [a]\n: b\n", "f.yaml:1: a key must be a name, not a list"),
        ("a: &x [*x]\n", "f.yaml: an alias (*name) refers to a block that contains it"),
        ("a: !!set {x, y}\n", "f.yaml:1: a: broken YAML: unsupported tag 'tag:yaml.org,2002:set'"),
        ("a: !!binary aGk=\n", "f.yaml:1: a: broken YAML: unsupported tag 'tag:yaml.org,2002:binary'"),
        ("a: !!python/name:os.system\n", "f.yaml:1: a: broken YAML: unsupported tag"),
        ("a: 2024-02-30\n", "f.yaml:1: a: '2024-02-30' reads as a date but is not one (day is out of range for month)"),
        ("a: !!int x\n", "f.yaml:1: a: 'x' reads as a number but is not one"),
        ('a: "x\\0y"\n', "f.yaml:1: a: a NUL character is not allowed"),
        ("a: <<\n", "f.yaml:1: a: '<<' is YAML's merge key; quote it to use it as text"),
        ("a: 1\na: 2\n", "f.yaml:2: a: duplicate key"),
        ("a: [1, 2\n", "f.yaml:2: broken YAML: did not find expected ',' or ']'"),
        ("a: " + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2) + "\n", f"f.yaml: nested more than {MAX_DEPTH} levels"),
    ],
)
def test_what_later_steps_could_trip_over_is_refused_here(text: str, expected: str) -> None:
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_nesting_past_the_parser_limit_is_one_problem_too() -> None:
    (found,) = problems("a: " + "[" * 3000 + "]" * 3000 + "\n")
    assert "nest" in found  # libyaml's own limit, or Python's recursion limit in the pure-Python parser


def test_alias_bombs_are_refused_without_expanding_them() -> None:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    (found,) = problems("\n".join(lines) + "\n")
    assert "more than 200,000 values once aliases (*name) are expanded" in found


def test_ordinary_yaml_still_reads_as_before() -> None:
    text = "base: &b {x: 1, when: 2024-01-02}\nother:\n  <<: *b\n  y: [1, 2.5, true, null, 'on']\n"
    data, lines = parse_yaml(text, "f.yaml")
    assert data["other"]["x"] == 1 and data["other"]["y"] == [1, 2.5, True, None, "on"]
    assert str(data["base"]["when"]) == "2024-01-02" and lines.line(("other", "y", 1)) == 4
    assert parse_value("[1, {a: 2}]", "value") == [1, {"a": 2}]
    with pytest.raises(FileError, match="a key must be a name"):
        parse_value("{1: 2}", "value")


def test_one_problem_is_one_line() -> None:
    problem = Problem("f.yaml", "bad\nvalue\x1e", key="a\u2028b", line=3)
    assert str(problem) == "f.yaml:3: a\\u2028b: bad\\nvalue\\x1e" and len(str(problem).splitlines()) == 1
