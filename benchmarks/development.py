"""The developmental experiment: does raising an agent change how it acts on moral situations it never saw?

``python -m benchmarks development [--json] [--models tiny,smollm2] [--arms A,...] [--seeds N] [--episodes N]
[--smollm2-episodes N] [--smollm2-arms A,...] [--smollm2-seeds N] [--smollm2-budget STEPS] [--runs-dir DIR]
[--reuse-dir DIR ...] [--moralchoice CSV] [--no-train] [--figure PNG]``

**Arms** (per model; each a config under ``configs/experiments/``, trained as a normal run folder
``<runs-dir>/<model>/<arm>-s<seed>`` that ``upbringing report`` draws, and reused once it has a ``summary.json``):

- ``untrained``: the raised arm's agent before any training (the same seed's initial weights);
- ``raised``: the quickstart curriculum (physics -> social -> moral stories, default constitution, simulated parent,
  CLEAR retention). A finished run of the identical config in a ``--reuse-dir`` (default: the curriculum benchmark's
  retention runs) is reused rather than trained again;
- ``raised_cai``: the same, raised with the constitutional-AI critique-and-revision phase on the moral-stories stage,
  its revisions anchored in CLEAR's replay buffer (``configs/experiments/raised_cai.yaml``);
- ``direct``: the control, the moral-stories stage alone for as many env steps as the raised arm trained (its mean
  over seeds 0-2), never promoted early;
- ``direct_to_mastery``: the project's usual direct control (``curriculum.teacher: direct``), stopping at mastery;
- ``no_constitution``: the ablation, raised without a constitution.

**Evaluation** on content no training run saw, every arm judged by the same default constitution (the raised
config's; an arm's own shaping does not change how it is judged), by the project's evaluation code:
:func:`upbringing.curriculum.evaluation.evaluate_run` (every stage in distribution, its held-out split, with story
families never trained on, and its shift suites: unseen opponents, changed gravity and friction),
:func:`upbringing.curriculum.moralchoice.evaluate_moralchoice` (the MoralChoice development split in both action
orders; skipped with a message when the CSV is absent) and :func:`upbringing.curriculum.stage_envs.evaluate` on the
project's own Ink stories (``envs/moral/ink/``, played as the stories stage with its constitution). Each run
folder gets the evaluation as ``eval.json`` (the report draws it) and ``development.json`` (the figures, reused while
the settings are the same).

**Figures** per arm, over seeds, as ``{mean, low, high, n}`` (Student-t 95% interval,
:func:`upbringing.curriculum.compare.mean_ci`): :data:`FIGURES`, compliance per principle on held-out families
(``compliance/<principle>``), each stage's score per suite (``score/<stage>/<suite>``) and each stage's retention
(``retention/<stage>``: final / at-mastery held-out score; ``retention_lowest/<stage>``: lowest after any later
stage / at mastery). ``goals`` says which of the experiment's goals the raised arm met.

SmolLM2-135M-Instruct (``--models smollm2``, pulled offline) runs with the chat prompt and the options listed,
trained by LoRA PPO (:data:`MODELS`) at a reduced budget a CPU can afford: ``--smollm2-budget`` env steps per stage
(default 64; the ``direct`` arm that many times the raised arm's number of stages, and a critique phase scaled with
its stage), chunks of at most that many steps, the arms of ``--smollm2-arms`` (default untrained, direct, raised) and
``--smollm2-seeds`` seeds (default 1). It is evaluated on the stories stage, MoralChoice and the Ink stories with
``--smollm2-episodes`` per suite variant; its earlier stages' retention comes from the run's own retention matrix.
The result's ``budgets`` records the budget used.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._development_table import FIGURES, REFERENCE_ARM, aggregate, format_table, goals, plot
from benchmarks.judges import CANDIDATES, moralchoice_dev

if TYPE_CHECKING:
    from upbringing.curriculum.runner import Run

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "configs" / "experiments"
ARMS = ("untrained", "raised", "raised_cai", "direct", "direct_to_mastery", "no_constitution")
MODELS = {
    "tiny": {},
    # pretrained: the chat prompt with the options listed; LoRA PPO as benchmarks/pretrained.py trains it (r 8,
    # lr_lm 2e-4, 2 epochs, 8 env steps per env per update). LoRA's B matrices start at zero, so the untrained
    # agent acts as the base model does.
    "smollm2": {
        "agent.model": "smollm2-135m-instruct",
        "agent.list_options": "true",
        "agent.lora.enabled": "true",
        "agent.lr_lm": "2e-4",
        "agent.n_epochs": "2",
        "agent.n_steps": "8",
    },
}
"""Agent overrides per model, on top of each arm's config (the judging config's too)."""
BUDGETED = ("smollm2",)
"""Models whose trained arms run at a reduced budget (``--smollm2-budget``): each stage's env steps capped."""
SMOLLM2_ARMS = ("untrained", "direct", "raised")
"""The SmolLM2 arms measured by default (``--smollm2-arms``): LoRA PPO is ~1.4 s per env step on one CPU thread."""
MORALCHOICE_CSV = moralchoice_dev() or CANDIDATES[0]
INK_DIR = ROOT / "envs" / "moral" / "ink"
STORIES = "stories"
EVAL_DIGEST = "development.json"


# ------------------------------------------------------------------------------------------------ configs and runs
def arm_config_path(arm: str) -> Path:
    """The config of ``arm`` (``untrained`` is judged on the reference arm's)."""
    return EXPERIMENTS / f"{REFERENCE_ARM if arm == 'untrained' else arm}.yaml"


def arm_config(arm: str, model: str, seed: int, budget: int | None = None) -> Any:
    """The validated config of one arm, model and seed (tracking off: benchmark runs log to their folders), with
    :func:`budget_overrides` when ``budget`` (env steps per stage) is given."""
    from upbringing.curriculum.checks import load_config

    overrides = [f"seed={seed}", "tracking.wandb=off", *(f"{k}={v}" for k, v in MODELS[model].items())]
    config = load_config(arm_config_path(arm), overrides)
    if budget is None:
        return config
    return load_config(arm_config_path(arm), [*overrides, *budget_overrides(arm, config, budget)])


def budget_overrides(arm: str, config: Any, budget: int) -> list[str]:
    """Overrides that run ``config`` (``arm``'s) at ``budget`` env steps per stage: every stage's budget capped at it
    (the ``direct`` arm's one stage, standing in for the whole curriculum, at ``budget`` x the reference arm's number
    of stages: the raised arm's most steps), a critique phase's steps scaled with its stage's budget, and chunks of at
    most ``budget`` steps, so each stage is evaluated at least once. Budgets are whole PPO rollouts."""
    from upbringing.curriculum.checks import load_config

    rollout = config.curriculum.n_envs * config.agent.n_steps
    if budget < rollout:
        raise SystemExit(f"error: a budget of {budget} env steps per stage is less than one PPO rollout ({rollout})")
    whole = budget // rollout * rollout  # whole rollouts
    per_stage = whole
    if arm == "direct":
        per_stage *= len(load_config(arm_config_path(REFERENCE_ARM), check_envs=False).stages)
    chunk = min(config.curriculum.chunk_steps, whole)
    out = [f"curriculum.chunk_steps={chunk}"]
    for i, stage in enumerate(config.stages):
        steps = min(stage.budget, per_stage)
        out.append(f"stages.{i}.budget={steps}")
        if stage.critique is not None:
            scaled = round(stage.critique.steps * steps / stage.budget / rollout) * rollout
            out.append(f"stages.{i}.critique.steps={max(rollout, scaled)}")
    return out


def same_config(a: Any, b: Any) -> bool:
    """Whether two run configs would train the same run (everything but the name, which labels it)."""
    return a.model_dump(mode="json", exclude={"name"}) == b.model_dump(mode="json", exclude={"name"})


def find_run(config: Any, folders: Sequence[Path]) -> Path | None:
    """A finished run (it has a ``summary.json``) of ``config`` among ``folders``; None if there is none."""
    from upbringing.curriculum.config import run_config
    from upbringing.curriculum.runner import SUMMARY_FILE

    for folder in folders:
        if (folder / SUMMARY_FILE).exists() and same_config(run_config(folder), config):
            return folder
    return None


def train_or_reuse(config: Any, run_dir: Path, reuse: Sequence[Path], *, may_train: bool) -> Path | None:
    """The arm's finished run: reused from ``run_dir`` or ``reuse``, else trained into ``run_dir`` (None when
    ``may_train`` is off and there is none)."""
    import shutil

    from upbringing.curriculum.launch import train

    found = find_run(config, [run_dir, *reuse])
    if found is not None:
        print(f"  reusing {found}", flush=True)
        return found
    if not may_train:
        print(f"  not trained yet: {run_dir} (--no-train)", flush=True)
        return None
    if run_dir.exists():  # an interrupted earlier attempt: start it again
        shutil.rmtree(run_dir)
    start = time.perf_counter()
    train(config, run_dir, progress=False)
    print(f"  trained {run_dir} in {time.perf_counter() - start:.0f} s", flush=True)
    return run_dir


# ------------------------------------------------------------------------------------------------------ evaluation
def judge(arm_run: Path | None, judge_config: Any, folder: Path) -> Run:
    """A run of the reference config holding the arm's agent: the trained agent of ``arm_run`` (its latest intact
    checkpoint), or with None the untrained agent the seed builds."""
    from upbringing.curriculum.checkpoints import latest_checkpoint
    from upbringing.curriculum.config import run_config
    from upbringing.curriculum.runner import Run

    if arm_run is not None:
        own = run_config(arm_run).agent
        if own != judge_config.agent:
            raise SystemExit(f"error: {arm_run}: its agent settings differ from {arm_config_path(REFERENCE_ARM)}'s")
    run = Run(judge_config, folder, progress=False)
    if arm_run is not None:
        checkpoint = latest_checkpoint(arm_run)
        if checkpoint is None:
            raise SystemExit(f"error: {arm_run}: no intact checkpoint")
        run.agent.load(checkpoint / "agent")
    return run


def ink_stories(run: Run, stories: Sequence[Path]) -> dict[str, Any]:
    """The Ink stories played once each (they hold no randomness) as the stories stage, its constitution judging."""
    from upbringing.curriculum.evaluation import summarize
    from upbringing.curriculum.factory import EvalResult
    from upbringing.curriculum.stage_envs import evaluate

    i = [s.name for s in run.config.stages].index(STORIES)
    base = run.factory(i, len(run.stages[i].levels) - 1)
    pooled = EvalResult([], [], [], [], [])
    for path in stories:
        stage = base.stage.model_copy(update={"env": "moral/Ink-v0", "kwargs": {}, "levels": None})
        factory = replace(base, stage=stage, level_kwargs={"story": str(path)})
        r = evaluate(run.stage_agent(i), factory, [0], "success")
        for e in r.stats:
            pooled.add(e, "success")
    return summarize(pooled, run.stages[i].constitution)


def seed_figures(
    evaluation: Mapping[str, Any], moralchoice: Mapping[str, Any] | None, ink: Mapping[str, Any] | None
) -> dict[str, float | None]:
    """One agent's figures from its stage evaluation, MoralChoice result and Ink result (None: not measured)."""
    stories = evaluation["stages"][STORIES]
    held, ind = stories["suites"]["heldout"], stories["suites"]["in_distribution"]
    out: dict[str, float | None] = {
        "heldout_success": held["success_rate"],
        "heldout_hard_violation_rate": held.get("hard_violation_rate"),
        "heldout_compliance": (held.get("compliance") or {}).get("overall"),
        "in_distribution_success": ind["success_rate"],
        "alignment_stability": (stories["stability"].get("heldout") or {}).get("overall"),
        "alignment_stability_all_shifts": (evaluation["stability"]["all_shifts"] or {}).get("overall"),
    }
    for k, v in ((held.get("compliance") or {}).get("principles") or {}).items():
        out[f"compliance/{k}"] = v
    for name, st in evaluation["stages"].items():
        for suite, cell in st["suites"].items():
            out[f"score/{name}/{suite}"] = cell["score"]
    low = (moralchoice or {}).get("low") or {}
    out["moralchoice_commonsense_rate"] = (low.get("commonsense_rate") or {}).get("both")
    out["moralchoice_commonsense_probability"] = low.get("commonsense_probability")
    out["moralchoice_consistent"] = low.get("consistent_commonsense")
    out["ink_success"] = None if ink is None else ink["success_rate"]
    out["ink_compliance"] = None if ink is None else (ink.get("compliance") or {}).get("overall")
    return out


def retention_figures(run_dir: Path | None) -> dict[str, float | None]:
    """Each mastered stage's final and lowest-after-later-stages held-out score over its score at mastery."""
    from upbringing.curriculum.runner import RETENTION_FILE, SUMMARY_FILE

    from benchmarks.curriculum import seed_retention

    if run_dir is None or not (run_dir / RETENTION_FILE).exists():
        return {}
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    per_stage = seed_retention(summary, json.loads((run_dir / RETENTION_FILE).read_text()))
    out: dict[str, float | None] = {}
    for name, r in per_stage.items():
        ok = r is not None and r["at_mastery"] > 0
        out[f"retention/{name}"] = r["final"] / r["at_mastery"] if ok else None  # type: ignore[index]
        out[f"retention_lowest/{name}"] = r["lowest"] / r["at_mastery"] if ok else None  # type: ignore[index]
    out["env_steps"] = float(summary["global_step"])
    return out


def evaluate_arm_seed(
    arm_run: Path | None, judge_config: Any, out_dir: Path, settings: Mapping[str, Any], *, stages_only: Sequence[str]
) -> dict[str, float | None]:
    """Evaluate one agent (``arm_run``'s, or untrained) and write ``eval.json`` and ``development.json`` into
    ``out_dir``; reuse ``development.json`` when it was made with the same ``settings``."""
    from upbringing.curriculum.config import dump_config
    from upbringing.curriculum.evaluation import EVAL_FILE, evaluate_run
    from upbringing.curriculum.moralchoice import evaluate_moralchoice
    from upbringing.curriculum.runner import CONFIG_FILE

    digest = out_dir / EVAL_DIGEST
    if digest.exists():
        saved = json.loads(digest.read_text())
        if _same_settings(saved.get("settings") or {}, settings):
            print(f"  reusing {digest}", flush=True)
            return dict(saved["figures"])
    if stages_only:
        keep = [s for s in judge_config.stages if s.name in stages_only]
        judge_config = judge_config.model_copy(update={"stages": keep})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-development-") as tmp:
        run = judge(arm_run, judge_config, Path(tmp))
        evaluation = evaluate_run(run, ["heldout", "opponents", "physics"], episodes=settings["episodes"])
        mc = None
        if settings["moralchoice"] is not None:
            mc = evaluate_moralchoice(run.agent, settings["moralchoice"])
        ink = ink_stories(run, sorted(INK_DIR.glob("*.json"))) if settings["ink"] else None
    figures = {**seed_figures(evaluation, mc, ink), **retention_figures(arm_run)}
    out_dir.mkdir(parents=True, exist_ok=True)
    if arm_run is None:  # the untrained agent's folder: its config beside its evaluation, as `upbringing eval` does
        (out_dir / CONFIG_FILE).write_text(dump_config(judge_config), encoding="utf-8")
    header = {"run_dir": str(out_dir), "untrained": arm_run is None, "development": True}
    full = {**header, **evaluation, **({"moralchoice": mc} if mc is not None else {}), "ink": ink}
    (out_dir / EVAL_FILE).write_text(json.dumps(full, indent=1), encoding="utf-8")
    seconds = round(time.perf_counter() - start, 1)
    digest.write_text(json.dumps({"settings": dict(settings), "figures": figures, "seconds": seconds}, indent=1))
    print(f"  evaluated {out_dir} in {seconds:.0f} s", flush=True)
    return figures


def _same_settings(saved: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
    """Whether an evaluation made with ``saved`` settings stands for ``settings``: the same, the MoralChoice CSV
    compared by where it resolves to (the same file reached through a link is the same split)."""

    def norm(x: Mapping[str, Any]) -> dict[str, Any]:
        csv = x.get("moralchoice")
        return {**x, "moralchoice": None if csv is None else str(Path(csv).resolve())}

    return norm(saved) == norm(settings)


# ----------------------------------------------------------------------------------------------------------- main
def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks development")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    parser.add_argument("--models", default="tiny,smollm2", help="models (comma-separated): tiny, smollm2")
    parser.add_argument("--arms", default=",".join(ARMS), help="arms (comma-separated)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (tiny)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per suite variant (tiny)")
    parser.add_argument("--smollm2-episodes", type=int, default=8, help="episodes per suite variant (smollm2)")
    parser.add_argument(
        "--smollm2-arms", default=",".join(SMOLLM2_ARMS), help="arms of --arms measured for smollm2 (comma-separated)"
    )
    parser.add_argument("--smollm2-seeds", type=int, default=1, help="seeds per arm (smollm2)")
    parser.add_argument(
        "--smollm2-budget",
        type=int,
        default=64,
        help="env steps per stage of smollm2's trained arms (the direct arm: this x the raised arm's stages)",
    )
    parser.add_argument("--runs-dir", default="runs/benchmark-development", help="where the arms' runs are kept")
    parser.add_argument(
        "--reuse-dir",
        action="append",
        help="more folders whose finished runs of an identical config are reused (default: the curriculum "
        "benchmark's retention runs, runs/benchmark-curriculum/quickstart)",
    )
    parser.add_argument("--moralchoice", default=str(MORALCHOICE_CSV), help="MoralChoice development CSV")
    parser.add_argument("--no-train", action="store_true", help="evaluate only the runs already finished")
    parser.add_argument("--figure", help="write the bar chart here (PNG)")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    smollm2_arms = [a.strip() for a in args.smollm2_arms.split(",") if a.strip()]
    for name, known, given in (("model", MODELS, models), ("arm", ARMS, arms), ("arm", ARMS, smollm2_arms)):
        bad = [x for x in given if x not in known]
        if bad:
            raise SystemExit(f"error: unknown {name} {bad[0]!r}; choose from: {', '.join(known)}")
    reuse_roots = [Path(p) for p in (args.reuse_dir or ["runs/benchmark-curriculum/quickstart"])]
    csv = Path(args.moralchoice)
    if not csv.exists():
        print(f"MoralChoice not measured: {csv} not found (pass --moralchoice CSV)", flush=True)
    runs_dir = Path(args.runs_dir)

    table: dict[str, dict[str, Any]] = {}
    not_measured: dict[str, dict[str, str]] = {}
    seeds_done: dict[str, dict[str, list[int]]] = {}
    raw: dict[str, dict[str, list[dict[str, float | None]]]] = {}
    budgets: dict[str, dict[str, int | None]] = {}
    for model in models:
        skip = _model_unavailable(model)
        if skip:
            not_measured[model] = {a: skip for a in arms}
            continue
        # SmolLM2 on CPU: the arms of --smollm2-arms at --smollm2-budget, evaluated on the moral content only
        model_arms = arms if model == "tiny" else [a for a in arms if a in smollm2_arms]
        not_measured[model] = {a: "not in --smollm2-arms (LoRA PPO on CPU)" for a in arms if a not in model_arms}
        seeds = list(range(args.seeds if model == "tiny" else args.smollm2_seeds))
        budget = args.smollm2_budget if model in BUDGETED else None
        if budget is not None:
            budgets[model] = {"env_steps_per_stage": budget, "direct_env_steps": None}
        settings = {
            "episodes": args.episodes if model == "tiny" else args.smollm2_episodes,
            "moralchoice": str(csv) if csv.exists() else None,
            "ink": True,
        }
        stages_only = [] if model == "tiny" else [STORIES]
        for arm in model_arms:
            if not arm_config_path(arm).exists():
                not_measured[model][arm] = f"{arm_config_path(arm).relative_to(ROOT)} does not exist yet"
                continue
            per_seed, done = [], []
            for seed in seeds:
                print(f"{model} {arm} seed {seed}", flush=True)
                judge_config = arm_config(REFERENCE_ARM, model, seed)
                folder = runs_dir / model / f"{arm}-s{seed}"
                if arm == "untrained":
                    arm_run, out_dir = None, folder
                else:
                    reuse = sorted(q for root in reuse_roots if root.is_dir() for q in root.glob(f"*-s{seed}"))
                    config = arm_config(arm, model, seed, budget)
                    if budget is not None and arm == "direct":
                        budgets[model]["direct_env_steps"] = config.stages[0].budget
                    arm_run = train_or_reuse(config, folder, reuse, may_train=not args.no_train)
                    if arm_run is None:
                        continue
                    out_dir = arm_run
                per_seed.append(evaluate_arm_seed(arm_run, judge_config, out_dir, settings, stages_only=stages_only))
                done.append(seed)
            if per_seed:
                table.setdefault(model, {})[arm] = aggregate(per_seed)
                seeds_done.setdefault(model, {})[arm] = done
                raw.setdefault(model, {})[arm] = per_seed
            else:
                not_measured[model][arm] = "no finished run yet"
    result: dict[str, Any] = {
        "arms": table,
        "seeds": seeds_done,
        "goals": {model: goals(t, raw[model]) for model, t in table.items()},
        "not_measured": {m: v for m, v in not_measured.items() if v},
        "budgets": budgets,
        "figures": FIGURES,
        "per_seed": raw,
    }
    print(format_table(table))
    for model, g in result["goals"].items():
        print(f"goals ({model}, raised arm): {g}")
    for model, missing in result["not_measured"].items():
        for arm, why in missing.items():
            print(f"not measured: {model} {arm}: {why}")
    if args.figure:
        print(f"figure: {plot(table, Path(args.figure))}")
    return result


def _model_unavailable(model: str) -> str | None:
    """Why ``model`` cannot be measured here (None: it can)."""
    if model == "tiny":
        return None
    from upbringing.agents.lm.models import is_pulled

    name = MODELS[model]["agent.model"]
    return None if is_pulled(name) else f"run `upbringing models pull {name}` first"
