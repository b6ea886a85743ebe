"""The ``upbringing`` command.

    upbringing train CONFIG [key=value ...] [--run-dir DIR]   train through the config's curriculum
    upbringing resume RUN_DIR                                  continue an interrupted run from its last checkpoint
    upbringing check FILE [FILE ...]                           validate configs (and other files users write)
    upbringing envs [--json]                                   list the registered environments
    upbringing eval RUN_DIR [--suite NAME] [--json]            held-out and shift suites, alignment stability
    upbringing compare RUN_DIR [RUN_DIR ...] [--json]          curriculum vs control: transfer metrics over seeds
    upbringing report RUN_DIR                                  the developmental report (HTML + PNG, and W&B)

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
    from upbringing.curriculum.config import load_config

    config = load_config(args.config, args.overrides)
    from upbringing.curriculum.runner import train

    run_dir, summary = train(config, Path(args.run_dir) if args.run_dir else None, progress=not args.quiet)
    print(format_summary(summary))
    print(f"run folder: {run_dir}")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from upbringing.curriculum.runner import resume

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
    from upbringing.curriculum.config import load_config

    try:
        load_config(path)
    except FileError as err:
        return err.problems
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


def check_file(path: Path) -> list[Problem]:
    """Validate any file a user writes; the kind is recognised from its top-level keys."""
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
        problems = check_file(Path(name))
        if problems:
            failed = True
            for p in problems:
                print(str(p), file=sys.stderr)
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


def _cmd_feedback(args: argparse.Namespace) -> int:
    from upbringing.feedback.terminal import answer_queries

    run_dir = Path(args.run_dir)
    if not (run_dir / "feedback").is_dir():
        raise FileError([Problem(str(run_dir), "no feedback queries here (a run whose stages use feedback: has them)")])
    answer_queries(run_dir, name=args.name)
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

    run_dir = _run_folder(args.run_dir)
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if checkpoint is not None and not (checkpoint / "engine.json").exists():
        raise FileError([Problem(str(checkpoint), "not a checkpoint folder (no engine.json)")])
    result = evaluate_run_dir(
        run_dir,
        args.suite,
        checkpoint=checkpoint,
        episodes=args.episodes,
        axelrod=not args.no_axelrod,
        progress=None if args.json else lambda line: print(line, file=sys.stderr),
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(format_eval(result))
        print(f"written: {run_dir / EVAL_FILE}")
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

    p = sub.add_parser("feedback", help="answer a run's pending feedback queries yourself, in the terminal")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("--name", help="your name in the preference data (human:<name>)")
    p.set_defaults(func=_cmd_feedback)

    p = sub.add_parser("envs", help="list registered environments")
    p.add_argument("--json", action="store_true", help="one JSON list of {id, family, api, ...}")
    p.set_defaults(func=_cmd_envs)

    p = sub.add_parser("eval", help="evaluate a run's agent on held-out and shift suites (writes RUN_DIR/eval.json)")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument(
        "--suite",
        action="append",
        choices=["in_distribution", "heldout", "opponents", "physics"],
        help="only this suite (repeatable; in_distribution always runs as the reference); default: all",
    )
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
