"""Reading a constitution file: YAML -> schema -> checked principles and judges -> :class:`Constitution`, with every
problem reported as one line naming the file, the line and what was expected."""

from __future__ import annotations

import difflib
import hashlib
import typing
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from upbringing.constitutions.constitution import (
    SHIPPED,
    Constitution,
    ConstitutionFile,
    Principle,
    known_event_names,
    resolve_constitution,
)
from upbringing.constitutions.judges import Judge, RuleJudge
from upbringing.constitutions.model_judges import MINILM, ClassifierJudge, EmbeddingJudge, NLIJudge
from upbringing.constitutions.rules import compile_condition, event_problem
from upbringing.yamlfile import FileError, KeyPath, LineMap, Problem, dotted, parse_yaml, pydantic_problems


def _allowed_keys(loc: KeyPath) -> list[str] | None:
    """The keys the schema accepts at the mapping that holds ``loc[-1]`` (for 'unknown key' messages)."""
    model: Any = ConstitutionFile
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _model_in(model.model_fields[part].annotation)
        if model is None:
            return None
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _schema_problems(err: ValidationError, file: str, lines: LineMap) -> list[Problem]:
    problems = pydantic_problems(err, file, lines)
    out = []
    for e, problem in zip(err.errors(include_url=False), problems):
        message = problem.message
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(tuple(e["loc"]))
            if allowed:
                message = f"unknown key; expected one of: {', '.join(allowed)}"
        elif e["type"] == "tuple_type":
            message = message.replace("a valid tuple", "a list")
        elif e["type"] == "string_pattern_mismatch" and e["loc"][-1] == "id":
            message = f"a principle id is lower_snake_case (letters, digits, _) (got {e['input']!r})"
        out.append(Problem(problem.file, message, key=problem.key, line=problem.line))
    return out


def _is_path(model: str) -> bool:
    return model.startswith(("./", "../", "/", "~"))


def _principle_problems(
    spec: ConstitutionFile, raw: dict[str, Any], file: str, lines: LineMap, known: Collection[str] | None
) -> tuple[dict[str, Judge], list[Problem]]:
    """Checks the schema cannot express: tier fields, unique ids, rules, event names, model paths."""
    problems: list[Problem] = []
    judges: dict[str, Judge] = {}
    base = Path(file).resolve().parent
    seen: dict[str, int] = {}

    def add(message: str, path: KeyPath) -> None:
        problems.append(Problem(file, message, key=dotted(path), line=lines.line(path)))

    tier_fields = {"hard": "budget", "soft": "weight", "aspirational": "bonus"}
    if not spec.principles:
        add("a constitution needs at least one principle", ("principles",))
    for i, p in enumerate(spec.principles):
        at: KeyPath = ("principles", i)
        raw_p = raw["principles"][i]
        if p.id in seen:
            add(f"duplicate principle id {p.id!r} (first used by principles[{seen[p.id]}])", (*at, "id"))
        seen.setdefault(p.id, i)
        if p.tier == "hard" and p.budget is None:
            add("a hard principle needs a budget (its allowed expected cost per episode, >= 0)", (*at, "tier"))
        for tier, name in tier_fields.items():
            if name in raw_p and p.tier != tier:
                add(f"{name} is only for {tier} principles (this one is {p.tier})", (*at, name))
        for j, event in enumerate(p.applies.events or ()):
            problems.extend(event_problem(event, known, file, (*at, "applies", "events", j), lines))
        judge = p.judge
        if (judge.rule is None) == (judge.model is None):
            add("a judge needs exactly one of rule or model", (*at, "judge"))
            continue
        if judge.rule is not None:
            condition, found = compile_condition(judge.rule, file, (*at, "judge", "rule"), lines, known)
            problems.extend(found)
            if condition is None:
                continue
            if judge.cost == "magnitude" and not condition.names:
                add("cost: magnitude needs a rule that names an event outside 'not'", (*at, "judge", "cost"))
                continue
            judges[p.id] = RuleJudge(condition, judge.cost)
            continue
        if "cost" in raw_p.get("judge", {}):
            add("cost is only for rule judges (a model judge's cost comes from its threshold)", (*at, "judge", "cost"))
        built = _model_judge(p, base, file, (*at, "judge", "model"), lines, problems)
        if built is not None:
            judges[p.id] = built
    return judges, problems


def _model_judge(
    p: Principle, base: Path, file: str, at: KeyPath, lines: LineMap, problems: list[Problem]
) -> Judge | None:
    m = p.judge.model
    assert m is not None
    n_before = len(problems)

    def add(message: str, key: str) -> None:
        problems.append(Problem(file, message, key=dotted((*at, key)), line=lines.line((*at, key))))

    model = m.model
    if model is not None and _is_path(model):
        resolved = (base / Path(model).expanduser()).resolve()
        if not resolved.exists():
            add(f"model path {model!r} does not exist (looked at {resolved})", "model")
        model = str(resolved)
    irrelevant = {
        "embedding": ("label", "hypothesis"),
        "classifier": ("examples", "counter_examples", "hypothesis"),
        "nli": ("examples", "counter_examples", "label"),
    }[m.type]
    for name in irrelevant:
        if getattr(m, name) not in (None, ()):
            add(f"{name} is not used by a {m.type} judge", name)
    if m.type != "embedding" and model is None:
        add(f"a {m.type} judge needs a model (Hugging Face id or local path)", "type")
    if len(problems) > n_before:
        return None
    if m.type == "embedding":
        return EmbeddingJudge(m.examples or (p.text,), m.counter_examples, model or MINILM, m.threshold, m.input)
    if m.type == "classifier":
        return ClassifierJudge(model or "", m.label, m.threshold, m.input)
    hypothesis = m.hypothesis or f"This violates the principle: {p.text}"
    return NLIJudge(model or "", hypothesis, m.threshold, m.input)


def _build(data: bytes, file: str, known_events: Iterable[str] | None) -> tuple[Constitution | None, list[Problem]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, [Problem(file, f"cannot read file: {err}")]
    try:
        raw, lines = parse_yaml(text, file)
    except FileError as err:
        return None, err.problems
    if not isinstance(raw, dict):
        return None, [Problem(file, f"expected a mapping with name, version, principles; got {type(raw).__name__}")]
    try:
        spec = ConstitutionFile.model_validate(raw)
    except ValidationError as err:
        return None, _schema_problems(err, file, lines)
    known = known_event_names() if known_events is None else frozenset(known_events)
    judges, problems = _principle_problems(spec, raw, file, lines, known)
    if problems:
        return None, problems
    constitution = Constitution(
        name=spec.name,
        version=spec.version,
        description=spec.description,
        sha256=hashlib.sha256(data).hexdigest(),
        path=file,
        principles=spec.principles,
        lagrangian=spec.lagrangian,
        judges=judges,
    )
    return constitution, []


def _looks_like_a_name(name: str | Path) -> bool:
    """A bare word (``defualt``), not a path (``my.yaml``, ``./rules/x``): meant as a shipped constitution."""
    return isinstance(name, str) and not any(c in name for c in "/\\") and not name.endswith((".yaml", ".yml"))


def _read(path: str | Path) -> tuple[bytes | None, list[Problem]]:
    if _looks_like_a_name(path) and path not in SHIPPED and not Path(path).is_file():
        close = difflib.get_close_matches(str(path), SHIPPED, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        message = f"unknown constitution{hint}; shipped: {', '.join(SHIPPED)}, or give a path to a YAML file"
        return None, [Problem(str(path), message)]
    path = resolve_constitution(path)
    try:
        return path.read_bytes(), []
    except FileNotFoundError:
        return None, [Problem(str(path), f"file not found (shipped constitutions: {', '.join(SHIPPED)})")]
    except (OSError, ValueError) as err:
        return None, [Problem(str(path), f"cannot read file: {err}")]


def load_constitution(path: str | Path, known_events: Iterable[str] | None = None) -> Constitution:
    """Load and validate a constitution file.

    Args:
        path: The YAML file, or the name of a shipped constitution (``"default"``, ``"minimal"``, ``"layered"``).
        known_events: Event names its rules and layers may use; None: :func:`known_event_names`.

    Raises:
        FileError: with one :class:`~upbringing.yamlfile.Problem` (file, line, key, what was expected) per problem.
    """
    data, problems = _read(path)
    if data is None:
        raise FileError(problems)
    constitution, problems = _build(data, str(resolve_constitution(path)), known_events)
    if constitution is None:
        raise FileError(problems)
    return constitution


def parse_constitution(text: str, file: str = "<string>", known_events: Iterable[str] | None = None) -> Constitution:
    """Like :func:`load_constitution`, from YAML text (model paths resolve against the working directory)."""
    constitution, problems = _build(text.encode("utf-8"), file, known_events)
    if constitution is None:
        raise FileError(problems)
    return constitution


def check_constitution_file(path: str | Path, known_events: Iterable[str] | None = None) -> list[Problem]:
    """Every problem in a constitution file (empty when it is valid), for ``upbringing check``.

    Args:
        path: The YAML file (or a shipped constitution's name).
        known_events: Event names its rules and layers may use; None: :func:`known_event_names`. A run checks
            against the names of every registered env, not only the envs it uses: a general constitution names
            events from all three families, and a rule over an event an env never reports simply never fires.
    """
    data, problems = _read(path)
    if data is None:
        return problems
    return _build(data, str(resolve_constitution(path)), known_events)[1]
