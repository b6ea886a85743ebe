"""``LMAgent``: a language-model policy trained with PPO, behind the curriculum engine's :class:`Agent` interface.

A training run reads top to bottom in :meth:`LMAgent.learn`: reset the envs, then repeat
``collect -> (optional reward hook) -> PPO update`` until the step budget is spent, and return ``train/`` metrics.
Checkpoints are a directory of safetensors files (trainable weights incl. the value head, optimizer state, RNG
states) plus ``state.json`` (counters, numpy RNG state, config), so a resumed run continues bit-identically on CPU.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from upbringing.agents.base import Agent, Lockstep
from upbringing.agents.checkpoint import optimizer_from_tensors, optimizer_to_tensors, write_json_atomic
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.lm.policy import CausalLMPolicy, TextPolicy
from upbringing.agents.lm.ppo import PPOTrainer
from upbringing.agents.lm.prompt import EpisodeHistory, Query
from upbringing.agents.lm.rollout import Collector, Rollouts, RolloutState, collect
from upbringing.agents.replay import CloningSettings, ReplayBuffer, ReplaySample

CHECKPOINT_FORMAT = 1


def build_policy(config: LMConfig, seed: int) -> TextPolicy:
    """The policy ``config.architecture`` names: a causal LM (default) or a DRRN-style encoder."""
    if config.architecture == "encoder":
        from upbringing.agents.lm.encoder import EncoderPolicy

        return EncoderPolicy(config, seed)
    return CausalLMPolicy(config, seed)


class LMAgent(Agent):
    """A language-model agent: scores each action's text with an LM and learns with PPO.

    Args:
        config: Model, scoring and PPO settings.
        seed: Seeds the value head, the action sampling and the minibatch order.

    Attributes:
        replay: Optional decisions stored from earlier stages and how to clone them (CLEAR; see
            :mod:`upbringing.agents.replay`); every update then mixes them in. Filled by :meth:`remember`.
    """

    uses_text = True

    def __init__(self, config: LMConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.policy = build_policy(config, seed)
        self.trainer = PPOTrainer(self.policy, config)
        # Separate streams so evaluation (act) never shifts what training samples.
        self.train_generator = torch.Generator().manual_seed(seed)
        self.act_generator = torch.Generator().manual_seed(seed + 1)
        self.rng = np.random.default_rng(seed)
        self.num_timesteps = 0
        self.n_updates = 0
        self.replay: tuple[ReplayBuffer, CloningSettings] | None = None
        self._act_history: EpisodeHistory | None = None

    # -- acting -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        infos: Sequence[dict[str, Any]],
        deterministic: bool = False,
        episode_starts: Sequence[bool] | np.ndarray | None = None,
    ) -> np.ndarray:
        """Choose one action per env from the text views in ``infos`` (``obs`` is not used).

        Args:
            obs: The numeric observations (ignored: this agent reads text).
            infos: One info dict per env (``text``, ``action_texts``, ``action_mask``).
            deterministic: Take the most likely action instead of sampling.
            episode_starts: True for envs whose episode just began (their remembered turns are dropped), as in
                Stable-Baselines3's ``predict``. Without it, a new batch size starts every history afresh.
        """
        n = len(infos)
        if self._act_history is None or len(self._act_history) != n:
            self._act_history = EpisodeHistory(n, self.config.history_window)
        history = self._act_history
        if episode_starts is not None:
            for i, start in enumerate(episode_starts):
                if start:
                    history.reset(i)
        queries = [self.policy.prompts.query(info, history.turns(i)) for i, info in enumerate(infos)]
        chosen = self.policy.evaluate(queries).sample(self.act_generator, deterministic).numpy()
        for i, info in enumerate(infos):
            history.push(i, info["text"], queries[i].actions[chosen[i]])
        return chosen.astype(np.int64)

    @torch.no_grad()
    def action_probabilities(self, obs: np.ndarray, infos: Sequence[dict[str, Any]]) -> np.ndarray:
        """The policy's distribution over each env's actions, ``[N, K]`` (0 for invalid or absent actions), from
        the same one-pass scoring :meth:`act` samples from, for a fresh decision (no remembered turns); ``obs`` is
        not used. Evaluation reads it (e.g. MoralChoice's order-marginalised action probability)."""
        history = EpisodeHistory(len(infos), self.config.history_window)
        queries = [self.policy.prompts.query(info, history.turns(i)) for i, info in enumerate(infos)]
        return torch.softmax(self.policy.evaluate(queries).logits.detach().float(), dim=-1).cpu().numpy()

    # -- learning -----------------------------------------------------------------------------------------------
    def learn(self, venv: Any, steps: int) -> dict[str, float]:
        """Reset ``venv`` and train on about ``steps`` env steps (rounded up to whole updates).

        Returns:
            ``train/`` metrics of the last update plus episode statistics over the whole call.
        """
        n_envs = venv.num_envs
        per_update = n_envs * self.config.n_steps
        n_iterations = max(1, math.ceil(steps / per_update))
        state = None
        episodes: list[dict[str, Any]] = []
        metrics: dict[str, float] = {}
        forwards = 0
        t0 = time.perf_counter()
        costs = []
        if hasattr(self.policy, "longest_cut"):
            self.policy.longest_cut = 0
        for _ in range(n_iterations):
            rollouts = collect(self.policy, venv, self.config.n_steps, state, self.train_generator)
            state = rollouts.state
            episodes.extend(rollouts.episodes)
            forwards += rollouts.n_forwards
            costs.append(float(rollouts.costs.mean()))
            metrics = self._update(rollouts)
        elapsed = time.perf_counter() - t0
        done_steps = n_iterations * per_update
        successes = [e["success"] for e in episodes if e["success"] is not None]
        metrics.update(
            {
                "train/env_steps": float(self.num_timesteps),
                "train/updates": float(self.n_updates),
                "train/episodes": float(len(episodes)),
                "train/episode_return": float(np.mean([e["return"] for e in episodes])) if episodes else math.nan,
                "train/episode_length": float(np.mean([e["length"] for e in episodes])) if episodes else math.nan,
                "train/success_rate": float(np.mean(successes)) if successes else math.nan,
                "train/cost": float(np.mean(costs)),
                "train/forwards_per_step": forwards / (n_iterations * self.config.n_steps),
                "train/env_steps_per_s": done_steps / elapsed if elapsed > 0 else math.nan,
                # > 0: some prompt was longer than max_prompt_tokens (its beginning was cut); the runner says so
                "train/longest_prompt_cut": float(getattr(self.policy, "longest_cut", 0)),
            }
        )
        return metrics

    def _update(self, rollouts: Rollouts) -> dict[str, float]:
        """One PPO update on ``rollouts``; advances the counters."""
        metrics = self.trainer.update(rollouts, self.rng, self.replay)
        self.num_timesteps += rollouts.n_envs * rollouts.n_steps
        self.n_updates += 1
        return metrics

    def imitate(
        self,
        pairs: Sequence[tuple[Query, int]],
        epochs: int,
        lr: float,
        minibatch_size: int,
        seed: int,
    ) -> dict[str, float]:
        """Supervised fine-tuning on (situation, target action) pairs: cross-entropy of the policy's distribution over
        each query's candidates against the target (the supervised phase of Constitutional AI, Bai et al. 2022, on
        an action distribution instead of generated text).

        A fresh Adam at ``lr`` for every trainable part (PPO's optimizer and its moments are left as they were);
        minibatches are shuffled by ``seed``, so the same pairs and seed give the same weights.

        Returns:
            The mean loss and the mean probability of the targets before the first step and after the last epoch.
        """
        if not pairs:
            return {}
        groups = [{**g, "lr": lr} for g in self.policy.param_groups() if g["params"]]
        optimizer = torch.optim.Adam(groups, eps=1e-5)
        params = [p for g in groups for p in g["params"]]
        rng = np.random.default_rng(seed)
        queries = [q for q, _ in pairs]
        targets = torch.tensor([a for _, a in pairs], dtype=torch.long)

        @torch.no_grad()
        def measure() -> tuple[float, float]:
            logp = []
            for start in range(0, len(queries), minibatch_size):
                out = self.policy.evaluate(queries[start : start + minibatch_size])
                logp.append(out.log_prob(targets[start : start + minibatch_size]).float().cpu())
            lp = torch.cat(logp)
            return float(-lp.mean()), float(lp.exp().mean())

        loss0, prob0 = measure()
        for _ in range(epochs):
            order = rng.permutation(len(pairs))
            for start in range(0, len(order), minibatch_size):
                idx = order[start : start + minibatch_size]
                out = self.policy.evaluate([queries[i] for i in idx])
                loss = -out.log_prob(targets[idx]).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
                optimizer.step()
        loss1, prob1 = measure()
        return {"loss_before": loss0, "loss_after": loss1, "target_prob_before": prob0, "target_prob_after": prob1}

    def lockstep(self, n_envs: int) -> LMLockstep:
        return LMLockstep(self, n_envs)

    @torch.no_grad()
    def record_decisions(self, venv: Any, steps: int, seed: int) -> list[ReplaySample]:
        """Play the current policy (sampling, as in training) for about ``steps`` steps of ``venv`` and return each
        decision with the whole action distribution and value the policy gave it: the behaviour policy's record that
        CLEAR clones later. Uses a generator of its own (``seed``), so training's streams are not moved."""
        generator = torch.Generator().manual_seed(seed)
        rollouts = collect(self.policy, venv, max(1, math.ceil(steps / venv.num_envs)), None, generator)
        queries = [q for row in rollouts.queries for q in row]
        samples = []
        for start in range(0, len(queries), self.config.minibatch_size):
            batch = queries[start : start + self.config.minibatch_size]
            out = self.policy.evaluate(batch)
            probs = out.log_probs.float().exp().cpu().numpy()
            values = out.values.float().cpu().numpy()
            for q, p, v in zip(batch, probs, values):
                samples.append(ReplaySample(q.prompt, q.actions, q.mask, tuple(float(x) for x in p), float(v)))
        return samples

    # -- checkpoints --------------------------------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        """What must match between the agent that saved and the one that loads."""
        ident = self.config.model_dump(mode="json", include={"architecture", "model", "encoder_model", "lora", "kind"})
        tokenizer = getattr(self.policy, "tokenizer", None)
        if tokenizer is not None:
            vocab = json.dumps(sorted(tokenizer.get_vocab().items())).encode()
            ident["tokenizer_sha256"] = hashlib.sha256(vocab).hexdigest()
        return ident

    def save(self, path: Path) -> None:
        """Write weights (incl. value head), optimizer and RNG states (safetensors) and counters (JSON) to ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in self.policy.trainable_state().items()}
        save_file(weights, str(path / "weights.safetensors"))
        opt_tensors, opt_meta = optimizer_to_tensors(self.trainer.optimizer)
        save_file(opt_tensors, str(path / "optimizer.safetensors"))
        rng = {
            "train_generator": self.train_generator.get_state(),
            "act_generator": self.act_generator.get_state(),
            "torch_global": torch.get_rng_state(),
        }
        save_file(rng, str(path / "rng.safetensors"))
        state = {
            "format": CHECKPOINT_FORMAT,
            "identity": self._identity(),
            "config": self.config.model_dump(mode="json"),
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
            "n_updates": self.n_updates,
            "numpy_rng": self.rng.bit_generator.state,
            "optimizer": opt_meta,
        }
        write_json_atomic(path / "state.json", state)  # written last: its presence marks a complete checkpoint

    def load(self, path: Path) -> None:
        """Restore what :meth:`save` wrote; the agent must have been built with the same model and tokenizer."""
        path = Path(path)
        state = json.loads((path / "state.json").read_text())
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        if state["identity"] != self._identity():
            raise ValueError(
                f"{path}: checkpoint was saved by a different model/tokenizer/adapter setup: "
                f"{state['identity']} != {self._identity()}"
            )
        weights = load_file(str(path / "weights.safetensors"))
        own = self.policy.trainable_state()
        if set(weights) != set(own):
            missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
            raise ValueError(f"{path}: weights do not match the model (missing {missing[:5]}, unexpected {extra[:5]})")
        with torch.no_grad():
            for name, tensor in own.items():
                tensor.copy_(weights[name])
        optimizer_from_tensors(
            self.trainer.optimizer, load_file(str(path / "optimizer.safetensors")), state["optimizer"]
        )
        rng = load_file(str(path / "rng.safetensors"))
        self.train_generator.set_state(rng["train_generator"])
        self.act_generator.set_state(rng["act_generator"])
        torch.set_rng_state(rng["torch_global"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.num_timesteps = int(state["num_timesteps"])
        self.n_updates = int(state["n_updates"])
        self._act_history = None


class LMLockstep(Lockstep):
    """An :class:`LMAgent` learning from rows that something else steps: a :class:`~agents.lm.rollout.Collector`
    filled one step at a time, then the same PPO update (reward hook included) as :meth:`LMAgent.learn`.

    The first :meth:`act` starts the rollout from the infos it is given; after that the collector follows its rows'
    infos itself (they are the ones :meth:`observe` is told).

    Args:
        agent: The agent that learns.
        n_envs: How many rows it holds.
    """

    def __init__(self, agent: LMAgent, n_envs: int) -> None:
        self.agent = agent
        self.n_envs = n_envs
        self.state: RolloutState | None = None
        self.collector: Collector | None = None

    @property
    def collected(self) -> int:
        return 0 if self.collector is None else self.collector.t

    def act(self, obs: np.ndarray, infos: Sequence[dict[str, Any]]) -> np.ndarray:
        agent = self.agent
        if self.state is None:
            self.state = RolloutState.start(infos, agent.config.history_window)
        if self.collector is None:
            self.collector = Collector(agent.policy, agent.config.n_steps, self.state, agent.train_generator)
        return self.collector.act()

    def observe(
        self,
        obs: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: Sequence[dict[str, Any]],
        reset_infos: Sequence[dict[str, Any]],
    ) -> dict[str, float] | None:
        assert self.collector is not None, "observe() follows act()"
        self.collector.record(rewards, dones, infos, reset_infos)
        if not self.collector.full:
            return None
        agent = self.agent
        rollouts = self.collector.rollouts()
        self.collector = None
        metrics = agent._update(rollouts)
        metrics.update({"train/env_steps": float(agent.num_timesteps), "train/updates": float(agent.n_updates)})
        return metrics
