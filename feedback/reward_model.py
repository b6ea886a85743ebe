"""Learned reward models: an ensemble of small MLPs trained on preferences with the Bradley-Terry loss.

Each member maps one step's features to a reward; a segment's return is the sum over its steps, and the probability
that segment ``a`` is preferred to ``b`` is ``sigmoid(R_a - R_b)`` (Christiano et al., 2017, "Deep reinforcement
learning from human preferences"). Training minimises the cross-entropy against soft labels, so ties (0.5) and the
averaged answers of several raters are used as they are. Members differ by initialisation, data order and (by
default) a bootstrap resample of the preferences, which gives the disagreement that active query selection uses.

:class:`LearnedReward` is the cheap per-step scorer that reward wrappers call: the ensemble's weights copied to
numpy, the mean over members, normalised by a running mean and standard deviation.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from upbringing.feedback.config import RewardModelConfig
from upbringing.feedback.features import StepFeaturizer


def pairwise_accuracy(p_a: np.ndarray, labels: np.ndarray) -> float:
    """Share of non-tie labels whose preferred side the model predicts (``p_a > 0.5``); NaN if there are none."""
    p_a, labels = np.asarray(p_a, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    decided = labels != 0.5
    if not decided.any():
        return float("nan")
    return float(((p_a[decided] > 0.5) == (labels[decided] > 0.5)).mean())


def expected_calibration_error(p_a: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of pairwise predictions (Guo et al., 2017), in [0, 1].

    The confidence of a prediction is ``max(p_a, 1 - p_a)`` and its correctness is the label's probability of the
    predicted side (so a tie counts as half right), binned into ``n_bins`` equal-width bins over [0.5, 1].
    """
    p_a, labels = np.asarray(p_a, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if len(p_a) == 0:
        return float("nan")
    conf = np.maximum(p_a, 1.0 - p_a)
    correct = np.where(p_a >= 0.5, labels, 1.0 - labels)
    bins = np.minimum(((conf - 0.5) * 2.0 * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread: these MLPs are so small that extra threads only add synchronisation, which
    on a busy machine makes training tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RewardEnsemble(torch.nn.Module):
    """An ensemble of MLPs ``step features -> reward``, evaluated for all members in one batched pass.

    Args:
        in_dim: Size of a step's feature vector.
        config: Sizes and training settings.
        seed: Seed of the initial weights (training randomness comes from :meth:`fit`'s seed).
    """

    # Buffers made by register_buffer in __init__ (saved with the weights): declared so that reads are Tensors.
    in_mean: torch.Tensor
    in_std: torch.Tensor
    fits: torch.Tensor

    def __init__(self, in_dim: int, config: RewardModelConfig | None = None, seed: int = 0):
        super().__init__()
        self.in_dim = in_dim
        self.config = config or RewardModelConfig()
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        e = self.config.ensemble_size
        for fan_in, fan_out in itertools.pairwise([in_dim, *self.config.hidden, 1]):
            self.weights.append(torch.nn.Parameter(torch.empty(e, fan_in, fan_out)))
            self.biases.append(torch.nn.Parameter(torch.empty(e, 1, fan_out)))
        self.initialise(seed)
        self.register_buffer("in_mean", torch.zeros(in_dim))
        self.register_buffer("in_std", torch.ones(in_dim))
        self.register_buffer("fits", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def initialise(self, seed: int) -> None:
        """Draw fresh weights (``nn.Linear``'s default init) from a generator seeded with ``seed``, leaving the
        global torch random stream untouched."""
        gen = torch.Generator().manual_seed(seed)
        for w, b in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(max(w.shape[1], 1))
            w.copy_((torch.rand(w.shape, generator=gen) * 2 - 1) * bound)
            b.copy_((torch.rand(b.shape, generator=gen) * 2 - 1) * bound)

    @property
    def fitted(self) -> bool:
        """True once :meth:`fit` has run at least once."""
        return int(self.fits) > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Step rewards: ``x`` is ``(B, D)`` (same input for every member) or ``(E, B, D)``; returns ``(E, B)``."""
        e = self.config.ensemble_size
        h = (x - self.in_mean) / self.in_std
        if h.dim() == 2:
            h = h.unsqueeze(0).expand(e, -1, -1)
        act = torch.relu if self.config.activation == "relu" else torch.tanh
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = act(h)
        return h.squeeze(-1)

    def returns(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Segment returns ``(E, N)`` from features ``(N, L, D)`` shared by every member, or ``(E, N, L, D)``
        per member, and the matching mask ``(N, L)`` or ``(E, N, L)``."""
        e = self.config.ensemble_size
        if x.dim() == 3:
            n, length, d = x.shape
            r = self.forward(x.reshape(n * length, d)).reshape(e, n, length)
        else:
            _, n, length, d = x.shape
            r = self.forward(x.reshape(e, n * length, d)).reshape(e, n, length)
        return (r * mask).sum(-1)

    @torch.no_grad()
    def predict_proba(self, xa: np.ndarray, ma: np.ndarray, xb: np.ndarray, mb: np.ndarray) -> np.ndarray:
        """Each member's probability that ``a`` is preferred, shape ``(E, N)``."""
        self.eval()
        with _one_thread():
            ra = self.returns(torch.as_tensor(xa), torch.as_tensor(ma))
            rb = self.returns(torch.as_tensor(xb), torch.as_tensor(mb))
            return torch.sigmoid(ra - rb).numpy()

    @torch.no_grad()
    def step_rewards(self, x: np.ndarray) -> np.ndarray:
        """Mean reward over members for each row of ``x`` ``(B, D)``, unnormalised."""
        self.eval()
        with _one_thread():
            return self.forward(torch.as_tensor(x, dtype=torch.float32)).mean(0).numpy()

    def fit(
        self,
        xa: np.ndarray,
        ma: np.ndarray,
        xb: np.ndarray,
        mb: np.ndarray,
        labels: np.ndarray,
        seed: int = 0,
        epochs: int | None = None,
    ) -> dict[str, float]:
        """Train on preferences; return the last epoch's mean loss.

        With ``config.warm_start`` training continues from the current weights; otherwise the weights are drawn
        afresh first (from ``seed``), so a model refitted on a growing data set does not see early preferences many
        more times than late ones, which would make it overconfident.

        Args:
            xa, ma, xb, mb: Padded features and masks of the two segments of each preference.
            labels: Probability that ``a`` is preferred (1, 0, 0.5 for ties, or any soft value).
            seed: Seed of the bootstrap and the data order.
            epochs: Passes over the data (default: the config's).
        """
        if len(labels) == 0:
            return {"loss": float("nan")}
        with _one_thread():
            return self._fit(xa, ma, xb, mb, labels, seed, epochs or self.config.epochs)

    def _fit(
        self, xa: np.ndarray, ma: np.ndarray, xb: np.ndarray, mb: np.ndarray, labels: np.ndarray, seed: int, epochs: int
    ) -> dict[str, float]:
        cfg = self.config
        n = len(labels)
        rng = np.random.default_rng(seed)
        if not cfg.warm_start:
            self.initialise(int(rng.integers(2**31)))
        xa_t, xb_t = torch.as_tensor(xa, dtype=torch.float32), torch.as_tensor(xb, dtype=torch.float32)
        ma_t, mb_t = torch.as_tensor(ma, dtype=torch.float32), torch.as_tensor(mb, dtype=torch.float32)
        y = torch.as_tensor(labels, dtype=torch.float32)
        # Standardise inputs with the statistics of every step in the data (constant features keep scale 1).
        steps = torch.cat([xa_t[ma_t > 0], xb_t[mb_t > 0]])
        std = steps.std(0, unbiased=False)
        self.in_mean.copy_(steps.mean(0))
        self.in_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        e = cfg.ensemble_size
        members = [rng.integers(0, n, n) if cfg.bootstrap else np.arange(n) for _ in range(e)]
        opt = torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.train()
        losses: list[float] = []
        batches = math.ceil(n / cfg.batch_size)
        for _ in range(max(epochs, math.ceil(cfg.min_steps / batches))):
            orders = np.stack([m[rng.permutation(n)] for m in members])
            losses = []
            for start in range(0, n, cfg.batch_size):
                idx = torch.as_tensor(orders[:, start : start + cfg.batch_size])
                ra = self.returns(xa_t[idx], ma_t[idx])
                rb = self.returns(xb_t[idx], mb_t[idx])
                # Bradley-Terry cross-entropy with soft labels; summed over members, which train independently.
                loss = torch.nn.functional.binary_cross_entropy_with_logits(ra - rb, y[idx], reduction="none")
                loss = loss.mean(1).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()) / e)
        self.fits += 1
        self.eval()
        return {"loss": float(np.mean(losses))}

    def save(self, directory: str | Path, prefix: str = "reward_model") -> None:
        """Write ``<prefix>.safetensors`` (weights) and ``<prefix>.json`` (sizes and config) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.detach().contiguous() for k, v in self.state_dict().items()}, directory / f"{prefix}.safetensors"
        )
        meta = {"in_dim": self.in_dim, "config": self.config.model_dump(mode="json")}
        (directory / f"{prefix}.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, prefix: str = "reward_model") -> RewardEnsemble:
        """Rebuild an ensemble from what :meth:`save` wrote."""
        directory = Path(directory)
        meta = json.loads((directory / f"{prefix}.json").read_text(encoding="utf-8"))
        model = cls(meta["in_dim"], RewardModelConfig.model_validate(meta["config"]))
        model.load_state_dict(load_file(directory / f"{prefix}.safetensors"))
        return model


class LearnedReward:
    """The per-step reward a wrapper adds: the ensemble's mean, normalised, evaluated in numpy (no torch per step).

    Until a model is set it returns 0.0. The normalisation (mean, std) is set by :meth:`set_model` from the
    ensemble's outputs on a sample of recently seen steps, so the term has zero mean and unit spread on the data the
    policy currently produces.

    Args:
        featurizer: How a step becomes features (must match the one the ensemble was trained with).
    """

    def __init__(self, featurizer: StepFeaturizer):
        self.featurizer = featurizer
        self._w: list[np.ndarray] = []
        self._b: list[np.ndarray] = []
        self._in_mean = np.zeros(featurizer.dim, dtype=np.float32)
        self._in_std = np.ones(featurizer.dim, dtype=np.float32)
        self._tanh = False
        self.mean = 0.0
        self.std = 1.0
        self.version = 0

    @property
    def ready(self) -> bool:
        """True once a trained model has been set."""
        return bool(self._w)

    def set_model(self, model: RewardEnsemble, calibration: np.ndarray | None = None) -> None:
        """Copy ``model``'s weights; normalise by its outputs on ``calibration`` steps ``(B, D)`` if given."""
        self._w = [w.detach().numpy().copy() for w in model.weights]
        self._b = [b.detach().numpy().copy() for b in model.biases]
        self._in_mean = model.in_mean.numpy().copy()
        self._in_std = model.in_std.numpy().copy()
        self._tanh = model.config.activation == "tanh"
        self.mean, self.std = 0.0, 1.0
        if calibration is not None and len(calibration):
            raw = self.raw(calibration)
            self.mean = float(raw.mean())
            self.std = float(raw.std()) if raw.std() > 1e-8 else 1.0
        self.version += 1

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Unnormalised mean reward over members for steps ``x`` ``(B, D)``."""
        if not self.ready:
            return np.zeros(len(x), dtype=np.float64)
        h = (np.asarray(x, dtype=np.float32) - self._in_mean) / self._in_std
        h = np.broadcast_to(h, (len(self._w[0]), *h.shape))
        last = len(self._w) - 1
        for i, (w, b) in enumerate(zip(self._w, self._b)):
            h = h @ w + b
            if i < last:
                h = np.tanh(h) if self._tanh else np.maximum(h, 0.0)
        return h[..., 0].mean(0).astype(np.float64)

    def normalised(self, x: np.ndarray) -> np.ndarray:
        """Normalised rewards for steps ``x`` ``(B, D)`` (zeros before a model is set)."""
        if not self.ready:
            return np.zeros(len(x), dtype=np.float64)
        return (self.raw(x) - self.mean) / self.std

    def __call__(self, obs: Any, action: Any, text: str | None = None) -> float:
        """Normalised reward of one step."""
        if not self.ready:
            return 0.0
        return float(self.normalised(self.featurizer.step(obs, action, text)[None])[0])

    def state(self) -> dict[str, Any]:
        """Picklable weights and normalisation, to copy the scorer into env subprocesses
        (``venv.env_method("set_feedback_state", state)``)."""
        return {
            "w": self._w,
            "b": self._b,
            "in_mean": self._in_mean,
            "in_std": self._in_std,
            "tanh": self._tanh,
            "mean": self.mean,
            "std": self.std,
            "version": self.version,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""
        self._w = [np.asarray(w, dtype=np.float32) for w in state["w"]]
        self._b = [np.asarray(b, dtype=np.float32) for b in state["b"]]
        self._in_mean = np.asarray(state["in_mean"], dtype=np.float32)
        self._in_std = np.asarray(state["in_std"], dtype=np.float32)
        self._tanh = bool(state["tanh"])
        self.mean, self.std, self.version = float(state["mean"]), float(state["std"]), int(state["version"])
