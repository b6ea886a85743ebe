"""Segment step features for the reward model: numeric observation + action, optionally a text embedding.

Each step of a segment becomes one fixed-size vector: the observation (flattened, zero-padded to ``obs_dim``), the
action (one-hot for ``Discrete`` actions, the flattened vector for ``Box`` actions) and, optionally, an embedding of
the step's text from any callable (a language model's or a sentence encoder's). A batch of segments becomes a
``(N, L, D)`` array plus a ``(N, L)`` mask, so segments cut short by an episode end are padded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from upbringing.feedback.data import Segment

Embedder = Callable[[list[str]], np.ndarray]


def step_text(info: dict[str, Any] | None, action: Any) -> str:
    """The text of one step as people and text features see it: the situation, then the chosen action's text."""
    info = info or {}
    text = str(info.get("text", ""))
    texts = info.get("action_texts")
    try:
        chosen = texts[int(action)] if texts is not None else None
    except (TypeError, ValueError, IndexError):
        chosen = None
    return f"{text}\n-> {chosen}" if chosen is not None else text


class StepFeaturizer:
    """Turns (observation, action, text) steps into fixed-size float32 vectors.

    Args:
        obs_dim: Size of the observation part; shorter observations are zero-padded, longer ones are an error.
        n_actions: Number of ``Discrete`` actions (one-hot); 0 for ``Box`` actions.
        action_dim: Size of a ``Box`` action (flattened); ignored when ``n_actions`` > 0.
        embed: Optional callable mapping a list of step texts to an ``(n, embed_dim)`` array.
        embed_dim: Size of the embeddings ``embed`` returns.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int = 0,
        action_dim: int = 0,
        embed: Embedder | None = None,
        embed_dim: int = 0,
    ):
        if obs_dim < 0 or n_actions < 0 or action_dim < 0 or embed_dim < 0:
            raise ValueError("feature sizes must be non-negative")
        if (embed is None) != (embed_dim == 0):
            raise ValueError("give both embed and embed_dim (> 0) for text features, or neither")
        self.obs_dim = obs_dim
        self.n_actions = n_actions
        self.action_dim = 0 if n_actions else action_dim
        self.embed = embed
        self.embed_dim = embed_dim

    @classmethod
    def for_spaces(cls, observation_space: Any, action_space: Any, **kwargs: Any) -> StepFeaturizer:
        """Size a featurizer for a Gymnasium env's spaces (``Box`` observations; ``Discrete`` or ``Box`` actions)."""
        obs_dim = int(np.prod(observation_space.shape))
        n = getattr(action_space, "n", None)
        if n is not None:
            return cls(obs_dim, n_actions=int(n), **kwargs)
        return cls(obs_dim, action_dim=int(np.prod(action_space.shape)), **kwargs)

    @property
    def uses_text(self) -> bool:
        """True when features include a text embedding (so callers must supply step texts)."""
        return self.embed is not None

    @property
    def dim(self) -> int:
        """Size of one step's feature vector."""
        return self.obs_dim + (self.n_actions or self.action_dim) + self.embed_dim

    def steps(
        self,
        obs: Sequence[Any],
        actions: Sequence[Any],
        texts: Sequence[str] | None = None,
        embedded: np.ndarray | None = None,
    ) -> np.ndarray:
        """Features of a run of steps, shape ``(T, dim)`` (``embedded``: the texts' embeddings, if already made)."""
        n = len(actions)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        o = np.asarray(obs, dtype=np.float32).reshape(n, -1)
        if o.shape[1] > self.obs_dim:
            raise ValueError(f"observation of size {o.shape[1]} is larger than the featurizer's obs_dim {self.obs_dim}")
        out[:, : o.shape[1]] = o
        col = self.obs_dim
        if self.n_actions:
            a = np.asarray(actions).reshape(n).astype(np.int64)
            if a.min() < 0 or a.max() >= self.n_actions:
                raise ValueError(f"action out of range for {self.n_actions} discrete actions: {a.tolist()}")
            out[np.arange(n), col + a] = 1.0
            col += self.n_actions
        elif self.action_dim:
            out[:, col : col + self.action_dim] = np.asarray(actions, dtype=np.float32).reshape(n, self.action_dim)
            col += self.action_dim
        if self.embed is not None:
            if embedded is None:
                if texts is None or len(texts) != n:
                    raise ValueError("text features need one text per step")
                embedded = self._embed(list(texts))
            out[:, col:] = embedded
        return out

    def _embed(self, texts: list[str]) -> np.ndarray:
        assert self.embed is not None
        emb = np.asarray(self.embed(texts), dtype=np.float32)
        if emb.shape != (len(texts), self.embed_dim):
            raise ValueError(f"embed returned shape {emb.shape}, expected {(len(texts), self.embed_dim)}")
        return emb

    def step(self, obs: Any, action: Any, text: str | None = None) -> np.ndarray:
        """Features of one step, shape ``(dim,)``."""
        return self.steps([obs], [action], None if text is None else [text])[0]

    def segment(self, segment: Segment) -> np.ndarray:
        """Features of every step of ``segment``, shape ``(len(segment), dim)``."""
        return self.steps(segment.obs, segment.actions, segment.texts if self.uses_text else None)

    def batch(self, segments: Sequence[Segment], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pad segments to ``length`` steps (default: the longest): features ``(N, L, dim)`` and mask ``(N, L)``."""
        if not self.uses_text:
            return pad([self.segment(s) for s in segments], self.dim, length)
        # One embedding call for every text of the batch: language models are far faster on batches.
        texts = [t for s in segments for t in s.texts[: len(s)]]
        if len(texts) != sum(len(s) for s in segments):
            raise ValueError("text features need one text per step")
        embedded = self._embed(texts) if texts else np.zeros((0, self.embed_dim), dtype=np.float32)
        feats, start = [], 0
        for s in segments:
            feats.append(self.steps(s.obs, s.actions, embedded=embedded[start : start + len(s)]))
            start += len(s)
        return pad(feats, self.dim, length)


def pad(feats: Sequence[np.ndarray], dim: int, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-segment ``(T_i, dim)`` arrays into ``(N, L, dim)`` features and a ``(N, L)`` float32 mask."""
    length = max((len(f) for f in feats), default=0) if length is None else length
    x = np.zeros((len(feats), length, dim), dtype=np.float32)
    mask = np.zeros((len(feats), length), dtype=np.float32)
    for i, f in enumerate(feats):
        t = min(len(f), length)
        x[i, :t] = f[:t]
        mask[i, :t] = 1.0
    return x, mask
