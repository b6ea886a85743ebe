"""Checks of a run config that need the envs and constitutions it names, and the one way to read a config a run uses.

:mod:`upbringing.curriculum.config` validates a file against the schema alone; here every stage's env id must be
registered, every level's keyword arguments must build the env, a multi-agent stage's seats must fit its population,
and every constitution named must load. Each problem names the config file, the line and the key.
"""

from __future__ import annotations

from pathlib import Path

from upbringing import envs
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.lm.preflight import check_model
from upbringing.constitutions import load_constitution
from upbringing.curriculum.config import RunConfig, read_config
from upbringing.curriculum.factory import stage_levels
from upbringing.curriculum.raycluster import INSTALL, ray_installed
from upbringing.curriculum.seating import check_stage
from upbringing.yamlfile import FileError, LineMap, Problem, dotted


def env_problems(config: RunConfig, file: str, lines: LineMap) -> list[Problem]:
    """Every stage's env id is registered and every level's kwargs build the env."""
    problems = []
    for i, stage in enumerate(config.stages):
        try:
            spec = envs.spec(stage.env)
        except envs.EnvArgumentError as err:
            problems.append(Problem(file, str(err), key=f"stages[{i}].env", line=lines.line(["stages", i, "env"])))
            continue
        for j, level in enumerate(stage_levels(stage)):
            key: list[str | int] = ["stages", i, "levels", j] if stage.levels is not None else ["stages", i, "kwargs"]
            try:
                env = envs.make(stage.env, **level)
            except (envs.EnvArgumentError, ImportError) as err:  # ImportError: an optional runtime (bink) missing
                problems.append(Problem(file, str(err), key=dotted(key), line=lines.line(key)))
                break
            except FileError as err:  # a file the env reads (a story folder or file) is missing or invalid
                for p in err.problems:
                    problems.append(Problem(file, f"{stage.env}: {p}", key=dotted(key), line=lines.line(key)))
                break
            env.close()
        if spec.api == "pettingzoo":
            where: list[str | int] = ["stages", i, "population" if stage.population is not None else "env"]
            try:
                messages = check_stage(stage, config.curriculum.n_envs, stage_levels(stage))
            except (envs.EnvArgumentError, FileError):
                messages = []  # a level that does not build is reported above
            for message in messages:
                problems.append(Problem(file, f"{stage.env}: {message}", key=dotted(where), line=lines.line(where)))
            if stage.critique is not None:
                where = ["stages", i, "critique"]
                message = f"{stage.env} is a multi-agent env; the critique phase plays single-agent envs only"
                problems.append(Problem(file, message, key=dotted(where), line=lines.line(where)))
        elif stage.population is not None:
            problems.append(
                Problem(
                    file,
                    f"{stage.env} is a single-agent env; a population needs a multi-agent env "
                    f"({spec.extra.get('multi_agent', 'a social/...-v0 game')})",
                    key=f"stages[{i}].population",
                    line=lines.line(["stages", i, "population"]),
                )
            )
    return problems


def constitution_problems(config: RunConfig, file: str, lines: LineMap) -> list[Problem]:
    """Every constitution named loads; its problems are reported under the config key that names it."""
    problems: list[Problem] = []
    named: list[tuple[list[str | int], str | None]] = [(["constitution"], config.constitution)]
    named += [(["stages", i, "constitution"], s.constitution) for i, s in enumerate(config.stages)]
    for key, name in named:
        if name is None:
            continue
        try:
            load_constitution(name)
        except FileError as err:
            for p in err.problems:
                what = p.message if p.file == name and p.line is None and p.key is None else str(p)
                problems.append(Problem(file, f"constitution {name!r}: {what}", key=dotted(key), line=lines.line(key)))
        except (ValueError, OSError) as err:
            problems.append(Problem(file, f"constitution {name}: {err}", key=dotted(key), line=lines.line(key)))
    return problems


def agent_problems(config: RunConfig, file: str, lines: LineMap) -> list[Problem]:
    """An LM agent's model resolves and its device exists (see :mod:`upbringing.agents.lm.preflight`)."""
    if not isinstance(config.agent, LMConfig):
        return []
    return [
        Problem(file, f.message, key=f.key, line=lines.line(f.key.split(".")))
        for f in check_model(config.agent)
        if f.error
    ]


def ray_problems(config: RunConfig, file: str, lines: LineMap) -> list[Problem]:
    """``curriculum.vec_env: ray`` needs Ray, an optional extra."""
    if config.curriculum.vec_env != "ray" or ray_installed():
        return []
    key = ["curriculum", "vec_env"]
    return [Problem(file, f"needs Ray, an optional extra: {INSTALL}", key=dotted(key), line=lines.line(key))]


def load_config(path: str | Path, overrides: list[str] | None = None, *, check_envs: bool = True) -> RunConfig:
    """Load, merge, override and validate a run config, then (``check_envs``) check its envs and constitutions.

    Raises:
        FileError: listing every problem (file, line, key, what was expected).
    """
    config, lines = read_config(path, overrides)
    if check_envs:
        file = str(path)
        problems = env_problems(config, file, lines) + constitution_problems(config, file, lines)
        problems += agent_problems(config, file, lines) + ray_problems(config, file, lines)
        if problems:
            raise FileError(problems)
    return config
