"""PPO for text policies (Schulman et al., 2017), following the details catalogued in "The 37 Implementation
Details of PPO" (Huang et al., 2022): GAE, per-minibatch advantage normalisation, clipped ratio, clipped value loss,
global gradient clipping and a target-KL early stop (with Stable-Baselines3's 1.5 x margin).

LM-specific parts: separate learning rates for the language model and the value head, gradient accumulation over
micro-batches (each one packed forward, see :mod:`upbringing.agents.lm.scoring`), and a check that the ratio is 1 on
the first minibatch, which catches any mismatch between how rollouts and updates score actions.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.lm.memory import GB, micro_batches, static_bytes
from upbringing.agents.lm.policy import TextPolicy
from upbringing.agents.lm.prompt import Query
from upbringing.agents.lm.rollout import Rollouts
from upbringing.agents.replay import CloningSettings, ReplayBuffer, ReplaySample


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    dones: np.ndarray,
    last_values: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al., 2016) over ``[T, N]`` arrays.

    ``dones[t]`` marks an episode that ended on step ``t``: nothing after it is bootstrapped. (Time limits are
    handled by the caller adding ``gamma * V(final state)`` to that step's reward, as Stable-Baselines3 does.)

    Returns:
        ``(advantages, returns)``, both ``[T, N]`` float32.
    """
    n_steps = rewards.shape[0]
    advantages = np.zeros_like(rewards, dtype=np.float32)
    last_gae = np.zeros(rewards.shape[1], dtype=np.float32)
    for t in reversed(range(n_steps)):
        next_values = last_values if t == n_steps - 1 else values[t + 1]
        nonterminal = 1.0 - dones[t].astype(np.float32)
        delta = rewards[t] + gamma * next_values * nonterminal - values[t]
        last_gae = delta + gamma * gae_lambda * nonterminal * last_gae
        advantages[t] = last_gae
    return advantages, (advantages + values).astype(np.float32)


# What the process holds besides the model and its optimizer: Python, torch, transformers, the tokenizer and the
# envs (measured: about 0.6 GB resident before a model is loaded).
BASE_OVERHEAD = int(0.6 * GB)


class RatioCheckError(RuntimeError):
    """The first minibatch's ratio is not 1: the update scores actions differently from the rollout."""


class PPOTrainer:
    """Updates a :class:`~agents.lm.policy.TextPolicy` from :class:`~agents.lm.rollout.Rollouts`.

    Args:
        policy: The policy to train; its ``param_groups()`` give the learning rates per part.
        config: PPO settings (``n_epochs``, ``minibatch_size``, ``grad_accum_steps``, clips, coefficients, ...).
    """

    def __init__(self, policy: TextPolicy, config: LMConfig) -> None:
        self.policy = policy
        self.config = config
        groups = [g for g in policy.param_groups() if g["params"]]
        # eps=1e-5 as in the PPO reference implementations (Huang et al., 2022, detail 3).
        self.optimizer = torch.optim.Adam(groups, eps=1e-5)
        self.params = [p for g in groups for p in g["params"]]
        amp = getattr(policy, "amp_dtype", None)
        self.exact = amp is None  # the ratio check is strict only in float32
        self.activation_budget: int | None = None  # bytes activations may take; None: no limit
        lm = getattr(policy, "lm", None)
        if config.memory_budget_gb is not None and lm is not None and hasattr(policy, "sample_cost"):
            static = static_bytes(lm, self.params) + BASE_OVERHEAD
            self.activation_budget = max(0, int(config.memory_budget_gb * GB) - static)
        self.micro_batch_sizes: list[int] = []  # of the last update (for the benchmark and tests)

    def _micro_batches(self, idx: np.ndarray, queries: list[Any]) -> list[np.ndarray]:
        """The minibatch ``idx`` as micro-batches: at least ``grad_accum_steps``, more where the activations of one
        would not fit the memory budget (see :mod:`upbringing.agents.lm.memory`)."""
        cfg = self.config
        if self.activation_budget is None:
            parts = np.array_split(idx, min(cfg.grad_accum_steps, len(idx)))
        else:
            costs = [self.policy.sample_cost(queries[i]) for i in idx]  # type: ignore[attr-defined]
            positions = micro_batches(
                costs,
                self.policy.lm.config,  # type: ignore[attr-defined]
                self.activation_budget,
                cfg.grad_accum_steps,
                cfg.activation_checkpointing,
            )
            parts = [idx[p] for p in positions]
        self.micro_batch_sizes.extend(len(p) for p in parts)
        return parts

    def update(
        self,
        rollouts: Rollouts,
        rng: np.random.Generator,
        replay: tuple[ReplayBuffer, CloningSettings] | None = None,
    ) -> dict[str, float]:
        """Run the PPO epochs on ``rollouts``.

        Args:
            rollouts: What :func:`~agents.lm.rollout.collect` returned.
            rng: Shuffles the minibatches (and draws the replayed decisions).
            replay: Decisions stored from earlier stages and how to clone them (CLEAR): each minibatch adds
                replayed decisions and a cloning loss toward their stored distributions and values.

        Returns:
            ``train/`` metrics.

        Raises:
            RatioCheckError: in float32, if the first minibatch's ratio differs from 1 by more than
                ``config.ratio_check_tol``.
        """
        cfg = self.config
        rewards = rollouts.rewards + cfg.gamma * rollouts.terminal_values
        adv, returns = compute_gae(
            rewards, rollouts.values, rollouts.dones, rollouts.last_values, cfg.gamma, cfg.gae_lambda
        )
        queries = [q for row in rollouts.queries for q in row]
        actions = torch.as_tensor(rollouts.actions.reshape(-1))
        old_logprobs = torch.as_tensor(rollouts.logprobs.reshape(-1))
        old_values = torch.as_tensor(rollouts.values.reshape(-1))
        adv_t = torch.as_tensor(adv.reshape(-1))
        returns_t = torch.as_tensor(returns.reshape(-1))
        n = len(queries)
        sums: dict[str, float] = {}
        n_minibatches = 0
        self.micro_batch_sizes = []
        early_stop = False
        ratio_dev = float("nan")
        epochs_done = 0
        for epoch in range(cfg.n_epochs):
            perm = rng.permutation(n)
            for start in range(0, n, cfg.minibatch_size):
                idx = perm[start : start + cfg.minibatch_size]
                mb_adv = adv_t[idx]
                if cfg.normalize_advantage and len(idx) > 1:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                adv_of = dict(zip(idx.tolist(), mb_adv))
                self.optimizer.zero_grad(set_to_none=True)
                stats: dict[str, float] = {}
                for micro in self._micro_batches(idx, queries):
                    weight = len(micro) / len(idx)
                    out = self.policy.evaluate([queries[i] for i in micro])
                    device = out.values.device
                    new_logprobs = out.log_prob(actions[micro])
                    log_ratio = new_logprobs - old_logprobs[micro].to(device)
                    ratio = log_ratio.exp()
                    if epoch == 0 and start == 0:
                        ratio_dev = max(
                            0.0 if math.isnan(ratio_dev) else ratio_dev, float((ratio.detach() - 1).abs().max())
                        )
                    a = torch.stack([adv_of[i] for i in micro.tolist()]).to(device)
                    pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range)).mean()
                    v = out.values.float()
                    ret = returns_t[micro].to(device)
                    v_loss = (v - ret) ** 2
                    if cfg.clip_range_vf is not None:
                        old_v = old_values[micro].to(device)
                        v_clipped = old_v + (v - old_v).clamp(-cfg.clip_range_vf, cfg.clip_range_vf)
                        v_loss = torch.max(v_loss, (v_clipped - ret) ** 2)
                    v_loss = 0.5 * v_loss.mean()
                    entropy = out.entropy().mean()
                    loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
                    (loss * weight).backward()
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - log_ratio).mean()  # Schulman's k3 estimator
                        clipped = ((ratio - 1).abs() > cfg.clip_range).float().mean()
                    for key, value in (
                        ("policy_loss", pg_loss),
                        ("value_loss", v_loss),
                        ("entropy", entropy),
                        ("approx_kl", approx_kl),
                        ("clip_fraction", clipped),
                    ):
                        stats[key] = stats.get(key, 0.0) + weight * float(value.detach())
                if replay is not None and len(replay[0]):
                    drawn = replay[0].sample(replay[1].replay_count(len(idx)), rng)
                    stats.update(self._clone(drawn, replay[1]))
                    stats["replay_share"] = len(drawn) / (len(drawn) + len(idx))
                if epoch == 0 and start == 0:
                    self._check_ratio(ratio_dev)
                if cfg.target_kl is not None and stats["approx_kl"] > 1.5 * cfg.target_kl:
                    # The policy moved too far: drop this minibatch's step and stop the epochs.
                    self.optimizer.zero_grad(set_to_none=True)
                    early_stop = True
                    break
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                stats["grad_norm"] = float(grad_norm)
                for key, stat in stats.items():
                    sums[key] = sums.get(key, 0.0) + stat
                n_minibatches += 1
            if early_stop:
                break
            epochs_done += 1
        metrics = {f"train/{k}": v / max(n_minibatches, 1) for k, v in sums.items()}
        var = float(np.var(returns))
        explained = float("nan") if var == 0 else 1.0 - float(np.var(returns - rollouts.values)) / var
        metrics.update(
            {
                "train/explained_variance": explained,
                "train/ratio_check_max_dev": ratio_dev,
                "train/minibatch_steps": float(n_minibatches),
                "train/epochs_completed": float(epochs_done),
                "train/micro_batch_size": float(np.mean(self.micro_batch_sizes)) if self.micro_batch_sizes else 0.0,
                "train/early_stopped": float(early_stop),
                "train/advantage_mean": float(adv.mean()),
                # Prioritized Level Replay's score (Jiang et al. 2021): the mean positive GAE advantage.
                "train/positive_value_loss": float(np.clip(adv, 0.0, None).mean()),
                "train/return_mean": float(returns.mean()),
                "train/value_mean": float(rollouts.values.mean()),
            }
        )
        return metrics

    def _clone(self, samples: list[ReplaySample], settings: CloningSettings) -> dict[str, float]:
        """Add the CLEAR cloning losses of ``samples`` to the gradients (Rolnick et al. 2019): the KL from
        each stored action distribution to the current one, and the squared distance to each stored value."""
        if not samples:
            return {}
        out = self.policy.evaluate([Query(s.prompt, s.actions, s.mask) for s in samples])
        device = out.values.device
        logq = out.log_probs.float()
        stored = torch.zeros_like(logq)  # stages differ in their number of actions: pad with probability 0
        for row, sample in enumerate(samples):
            stored[row, : len(sample.probs)] = torch.tensor(sample.probs, dtype=torch.float32)
        kept = stored > 0  # KL(p || q) sums over the actions the stored policy could take
        log_ratio = torch.where(kept, stored.clamp_min(1e-30).log() - logq, torch.zeros_like(logq))
        bc = (stored * log_ratio).sum(-1).mean()
        target = torch.tensor([s.value for s in samples], dtype=torch.float32, device=device)
        v_clone = 0.5 * ((out.values.float() - target) ** 2).mean()
        (settings.bc_coef * (bc + settings.value_coef * v_clone)).backward()
        return {"bc_loss": float(bc.detach()), "value_clone_loss": float(v_clone.detach())}

    def _check_ratio(self, dev: float) -> None:
        if dev <= self.config.ratio_check_tol:
            return
        message = (
            f"PPO ratio on the first minibatch differs from 1 by {dev:.2e} "
            f"(tolerance {self.config.ratio_check_tol:.0e}):"
            " the update does not score actions as the rollout did (dropout on? a stateful prompt?)"
        )
        if self.exact:
            raise RatioCheckError(message)
        warnings.warn(message + " (reduced precision: continuing)", RuntimeWarning, stacklevel=3)
