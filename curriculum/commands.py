"""What each ``upbringing`` command does (``cmd_<name>``, one function a command); the parser, the error handling
and the entry point are in :mod:`upbringing.curriculum.cli`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from upbringing.curriculum.texttable import text_table
from upbringing.yamlfile import FileError, Problem, load_yaml


def format_summary(summary: dict[str, Any]) -> str:
    """The developmental summary as a readable table."""
    rows = [("stage", "env", "steps to mastery", "final held-out score", "principles violated (held-out episodes)")]
    for s in summary["stages"]:
        if s["skipped"]:
            mastery = "skipped (direct control)"
        elif s["mastered"]:
            mastery = f"{s['steps_to_mastery']:,}"
        else:
            mastery = f"not mastered (level {s['level'] + 1}/{s['levels']}, {s['steps']:,} steps)"
        score = "-" if s["final_score"] is None else f"{s['final_score']:.2f} ({s['metric']})"
        violated = {k: v for k, v in (s.get("violations") or {}).items() if v > 0}
        if s.get("violations") is None:
            viol = "-"
        else:
            viol = ", ".join(f"{k} {v:.0%}" for k, v in sorted(violated.items())) or "none"
        fb = s.get("feedback")
        if fb:
            acc = fb.get("rm_true_accuracy", fb.get("rm_accuracy"))
            score += f", {int(fb['queries_used'])} queries" + ("" if acc is None else f", reward model {acc:.0%} right")
        rows.append((s["name"], s["env"], mastery, score, viol))
    lines = [
        f"Developmental summary: {summary['name']} (seed {summary['seed']}, teacher {summary['teacher']}, "
        f"{summary['global_step']:,} env steps)",
        *text_table(rows),
    ]
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    from upbringing.curriculum.checks import load_config

    config = load_config(args.config, args.overrides)
    from upbringing.curriculum.launch import train
    from upbringing.curriculum.preflight import config_warnings

    for line in config_warnings(config, prompts=False):  # a run that must cut prompts says so itself, per stage
        print(f"warning: {line}", file=sys.stderr)

    run_dir, summary = train(config, Path(args.run_dir) if args.run_dir else None, progress=not args.quiet)
    print(format_summary(summary))
    print(f"run folder: {run_dir}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from upbringing.curriculum.launch import resume

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FileError([Problem(str(run_dir), "run folder not found")])
    summary = resume(run_dir, progress=not args.quiet)
    print(format_summary(summary))
    print(f"run folder: {run_dir}")
    return 0


def _file_kind(data: Any) -> str:
    if isinstance(data, dict):
        if "stages" in data or "extends" in data:
            return "config"
        if "principles" in data:
            return "constitution"
        if "scenes" in data:
            return "story"
    return "unknown"


# Validators by file kind: each takes a path and returns its problems (an empty list when the file is valid).
CHECKERS: dict[str, Callable[[Path], list[Problem]]] = {}


def _check_config(path: Path) -> list[Problem]:
    from upbringing.curriculum.checks import load_config
    from upbringing.curriculum.preflight import config_warnings

    try:
        config = load_config(path)
    except FileError as err:
        return err.problems
    # Warnings (a slow dtype, stages whose prompts exceed the budget) do not fail the check.
    for line in config_warnings(config):
        print(f"{path}: warning: {line}", file=sys.stderr)
    return []


def _check_constitution(path: Path) -> list[Problem]:
    from upbringing.constitutions import check_constitution_file

    return check_constitution_file(path)


def _check_story(path: Path) -> list[Problem]:
    from upbringing.envs.moral.storyfile import check_story_file

    return check_story_file(path)


CHECKERS["config"] = _check_config
CHECKERS["constitution"] = _check_constitution
CHECKERS["story"] = _check_story


def _check_ink(path: Path) -> list[Problem]:
    from upbringing.envs.moral.inkcheck import check_ink_file

    return check_ink_file(path).problems


def check_file(path: Path) -> list[Problem]:
    """Validate any file a user writes; the kind is recognised from its top-level keys (compiled Ink: ``.json``)."""
    if path.suffix.lower() == ".json":  # the one JSON file users bring: a compiled Ink story (Inky export)
        return _check_ink(path)
    try:
        data, _ = load_yaml(path)
    except FileError as err:
        return err.problems
    kind = _file_kind(data)
    if kind not in CHECKERS:
        expected = "a run config (stages:)" + "".join(
            f", a {k} ({ {'constitution': 'principles:', 'story': 'scenes:'}[k] })"
            for k in ("constitution", "story")
            if k in CHECKERS
        )
        return [Problem(str(path), f"unrecognised file: expected {expected}", line=1)]
    return CHECKERS[kind](path)


def cmd_check(args: argparse.Namespace) -> int:
    failed = False
    for name in args.files:
        summary = ""
        if Path(name).suffix.lower() == ".json":  # compiled Ink: also say what exploring the story reached
            from upbringing.envs.moral.inkcheck import check_ink_file

            report = check_ink_file(Path(name))
            problems, summary = report.problems, report.summary() if report.states else ""
        else:
            problems = check_file(Path(name))
        if problems:
            failed = True
            for p in problems:
                print(str(p), file=sys.stderr)
            if summary:
                print(f"{name}: {summary}", file=sys.stderr)
        else:
            print(f"{name}: ok ({summary})" if summary else f"{name}: ok")
    return 1 if failed else 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from upbringing.feedback.answers import rater_id
    from upbringing.feedback.terminal import answer_queries

    run_dir = Path(args.run_dir)
    if not (run_dir / "feedback").is_dir():
        raise FileError([Problem(str(run_dir), "no feedback queries here (a run whose stages use feedback: has them)")])
    if args.name is not None:
        try:
            rater_id(args.name)
        except ValueError as e:
            raise FileError([Problem("--name", str(e))]) from None
    if not args.web:
        answer_queries(run_dir, name=args.name)
        return 0
    try:  # the web page is an optional extra: import it only when asked for
        from upbringing.feedback.web import serve
    except ImportError as e:
        raise FileError([Problem("--web", f"needs the web extra: pip install 'upbringing[web]' ({e})")]) from None
    try:
        serve(run_dir, args.host, args.port, name=args.name or "", allow_remote=args.allow_remote)
    except (ValueError, OSError) as e:
        raise FileError([Problem(f"--host {args.host} --port {args.port}", str(e))]) from None
    except KeyboardInterrupt:
        pass
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    from upbringing import envs

    rows = [s.row() for s in envs.list_specs()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no environments registered")
        return 0
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        age = f"  [infants ~{r['age_months'][0]}-{r['age_months'][1]} months]" if "age_months" in r else ""
        print(f"{r['id'].ljust(width)}  {r['family']:<8} {r['api']:<10} levels={r['levels']}  {r['description']}{age}")
    return 0


def _run_folder(name: str) -> Path:
    path = Path(name)
    if not path.is_dir():
        raise FileError([Problem(str(path), "run folder not found")])
    return path


def cmd_eval(args: argparse.Namespace) -> int:
    from upbringing.curriculum.evaluation import EVAL_FILE, evaluate_run_dir, format_eval
    from upbringing.curriculum.moralchoice import SUITE, format_moralchoice

    suites = args.suite or []
    moralchoice = SUITE in suites or (not suites and args.data is not None)
    stage_suites = [s for s in suites if s != SUITE]
    if moralchoice and args.data is None:
        raise FileError([Problem("--data", f"the {SUITE} suite needs --data PATH, a MoralChoice scenario CSV")])
    if args.data is not None and not moralchoice:
        raise FileError([Problem("--data", f"--data is read by the {SUITE} suite only; add --suite {SUITE}")])
    if args.config is not None:
        if not moralchoice or stage_suites:
            raise FileError([Problem("--config", f"an untrained agent from a config is evaluated by --suite {SUITE}")])
        if args.checkpoint:
            raise FileError([Problem("--checkpoint", "a checkpoint belongs to a run folder, not to --config")])
        return _eval_untrained(args)
    if len(args.targets) != 1 or "=" in args.targets[0]:
        raise FileError([Problem("upbringing eval", "give one RUN_DIR (or --config CONFIG [key=value ...])")])
    if args.out:
        raise FileError([Problem("--out", "is for --config; a run's evaluation is written into its run folder")])
    run_dir = _run_folder(args.targets[0])
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if checkpoint is not None and not (checkpoint / "engine.json").exists():
        raise FileError([Problem(str(checkpoint), "not a checkpoint folder (no engine.json)")])
    result: dict[str, Any] | None = None
    if stage_suites or not moralchoice:
        result = evaluate_run_dir(
            run_dir,
            stage_suites,
            checkpoint=checkpoint,
            episodes=args.episodes,
            axelrod=not args.no_axelrod,
            progress=None if args.json else lambda line: print(line, file=sys.stderr),
        )
    if moralchoice:
        result = _eval_run_moralchoice(args, run_dir, checkpoint)
    assert result is not None
    if args.json:
        print(json.dumps(result))
    else:
        if "stages" in result:
            print(format_eval(result))
        if SUITE in result:
            print(format_moralchoice(result[SUITE]))
        print(f"written: {run_dir / EVAL_FILE}")
    return 0


def _moralchoice_result(agent: Any, args: argparse.Namespace) -> dict[str, Any]:
    from upbringing.curriculum.moralchoice import evaluate_moralchoice

    if not agent.uses_text:
        raise FileError(
            [
                Problem(
                    "--suite moralchoice",
                    "needs an agent that reads text (agent.kind: lm); SB3 agents read "
                    "stage-specific numeric observations",
                )
            ]
        )
    try:
        return evaluate_moralchoice(agent, args.data, split=args.split, level=args.level)
    except ValueError as err:
        raise FileError([Problem(str(args.data), str(err))]) from None


def _eval_run_moralchoice(args: argparse.Namespace, run_dir: Path, checkpoint: Path | None) -> dict[str, Any]:
    from upbringing.curriculum.checkpoints import latest_checkpoint
    from upbringing.curriculum.evaluation import EVAL_FILE
    from upbringing.curriculum.launch import load_run
    from upbringing.curriculum.moralchoice import log_to_wandb, merge_into_eval_file

    run = load_run(run_dir, checkpoint)
    checkpoint = checkpoint or latest_checkpoint(run_dir)
    assert checkpoint is not None  # load_run has refused a run without one
    mc = _moralchoice_result(run.agent, args)
    header = {"run_dir": str(run_dir), "checkpoint": checkpoint.name, "global_step": run.state.global_step}
    run_id = json.loads((checkpoint / "engine.json").read_text(encoding="utf-8")).get("wandb_run_id")
    c = run.config
    log_to_wandb(mc, run_dir, c.tracking, c.name, run_id, run.state.global_step)
    return merge_into_eval_file(run_dir / EVAL_FILE, mc, header)


def _eval_untrained(args: argparse.Namespace) -> int:
    """``upbringing eval --config CONFIG [key=value ...] --suite moralchoice``: the config's agent before training,
    in a run-style folder (its resolved config and eval.json) that ``upbringing report`` reads."""
    from upbringing.agents.config import build_agent
    from upbringing.curriculum.checks import load_config
    from upbringing.curriculum.config import dump_config
    from upbringing.curriculum.evaluation import EVAL_FILE
    from upbringing.curriculum.factory import seed_everything
    from upbringing.curriculum.launch import default_run_dir
    from upbringing.curriculum.moralchoice import SUITE, format_moralchoice, log_to_wandb, merge_into_eval_file
    from upbringing.curriculum.runner import CONFIG_FILE

    bad = [t for t in args.targets if "=" not in t]
    if bad:
        raise FileError([Problem(bad[0], "with --config, the other arguments are key=value overrides")])
    config = load_config(args.config, list(args.targets), check_envs=False)
    if config.agent.kind != "lm":
        raise FileError([Problem(args.config, f"the {SUITE} suite needs an agent that reads text", key="agent.kind")])
    default = default_run_dir(config)
    out = Path(args.out) if args.out else default.with_name(f"{default.name}-untrained")
    seed_everything(config.seed)
    agent = build_agent(config.agent, config.seed, None, None, 1)
    mc = _moralchoice_result(agent, args)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    header = {"config": str(args.config), "run": config.name, "seed": config.seed, "untrained": True, "global_step": 0}
    run_id = log_to_wandb(mc, out, config.tracking, f"{config.name}-untrained", None, 0)
    if run_id is not None:
        header["wandb_run_id"] = run_id
    (out / EVAL_FILE).unlink(missing_ok=True)  # the folder holds this untrained agent's evaluation only
    result = merge_into_eval_file(out / EVAL_FILE, mc, header)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_moralchoice(mc))
        print(f"written: {out / EVAL_FILE}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from upbringing.curriculum.compare import compare_runs, format_comparison

    result = compare_runs(
        [_run_folder(d) for d in args.run_dirs],
        stage=args.stage,
        threshold=args.threshold,
        horizon=args.horizon,
        reference=args.reference,
        group_by=args.group_by,
        confidence=args.confidence,
    )
    print(json.dumps(result) if args.json else format_comparison(result))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from upbringing.curriculum.report import build_report

    page = build_report(_run_folder(args.run_dir), wandb_mode="off" if args.no_wandb else None)
    print(f"report: {page}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from upbringing.agents.lm.models import ModelError, list_models, pull

    if args.action == "list":
        rows = list_models()
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            where = r["path"] if r["pulled"] else f"not pulled: upbringing models pull {r['name']}"
            print(f"{r['name'].ljust(width)}  {r['licence']:<11} {r['source']}  {where}")
        return 0
    if not args.model:
        print("error: models pull: expected a model name (`upbringing models list`) or a .gguf file", file=sys.stderr)
        return 1
    try:
        print(f"pulling {args.model} (download and conversion take a minute the first time)", file=sys.stderr)
        folder = pull(args.model, name=args.name, licence=args.licence)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{folder.name}: {folder}")
    return 0
