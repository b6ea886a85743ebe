"""Lagrange multipliers for hard principles: one per principle, updated from measured per-episode costs.

Each hard principle ``k`` is a constraint ``J_k <= d_k`` on its expected per-episode cost. The learner maximises the
shaped reward ``r - sum_k lambda_k * c_k`` while the multipliers ascend the constraint violation:

- ``gradient`` (projected gradient ascent): ``lambda_k <- clamp(lambda_k + eta * (J_k - d_k), 0, lambda_max)``;
- ``pid`` (Stooke, Achiam & Abbeel 2020, "Responsive Safety in Reinforcement Learning by PID Lagrangian Methods",
  Algorithm 2): ``I_k <- max(0, I_k + J_k - d_k)``, ``lambda_k <- clamp(kp * (Jema_k - d_k) + ki * I_k
  + kd * max(0, Jema_k - Jema_prev_k), 0, lambda_max)``, where ``Jema`` is an exponential moving average of the
  cost (``ema`` = 0: no smoothing). The integral is also capped at ``lambda_max / ki`` so it cannot wind up beyond
  what the clamp lets through. With ``kp = kd = 0`` this is the gradient method with ``eta = ki``.

The current values live in a :class:`Multipliers` object that the shaping wrappers read on every step, so in one
process an update is seen by every wrapper at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from upbringing.constitutions.constitution import Constitution, Context, LagrangianSettings

Method = Literal["gradient", "pid"]


class Multipliers:
    """The current multiplier of each hard principle, shared between a :class:`Lagrangian` and shaping wrappers.

    In-process wrappers hold the same object, so updates reach them immediately. A wrapper in a subprocess holds a
    pickled copy taken when its envs were built (the engine builds each chunk's envs afresh, after the update).
    """

    __slots__ = ("values",)

    def __init__(self, values: Mapping[str, float] | None = None):
        self.values: dict[str, float] = {k: float(v) for k, v in (values or {}).items()}

    def get(self, principle_id: str) -> float:
        """The multiplier of ``principle_id`` (0 for one never set)."""
        return self.values.get(principle_id, 0.0)

    def set(self, values: Mapping[str, float]) -> None:
        """Overwrite the given multipliers in place (others keep their values)."""
        for k, v in values.items():
            self.values[k] = float(v)

    def __getstate__(self) -> dict[str, float]:
        return dict(self.values)

    def __setstate__(self, state: dict[str, float]) -> None:
        self.values = dict(state)

    def __repr__(self) -> str:
        return f"Multipliers({self.values!r})"


class Lagrangian:
    """One Lagrange multiplier per hard principle.

    Args:
        budgets: Budget ``d_k`` (allowed expected cost per episode) of each hard principle, by id.
        method: ``gradient`` or ``pid`` (see the module docstring).
        lr: ``eta`` of the gradient method.
        lambda_init: Starting value of every multiplier.
        lambda_max: Upper clamp of every multiplier.
        kp: PID proportional gain.
        ki: PID integral gain.
        kd: PID derivative gain.
        ema: PID smoothing of the cost used by the P and D terms, in [0, 1).
    """

    def __init__(
        self,
        budgets: Mapping[str, float],
        *,
        method: Method = "gradient",
        lr: float = 0.05,
        lambda_init: float = 0.0,
        lambda_max: float = 100.0,
        kp: float = 0.0,
        ki: float = 0.05,
        kd: float = 0.0,
        ema: float = 0.0,
    ):
        if method not in ("gradient", "pid"):
            raise ValueError(f"unknown Lagrangian method {method!r}; expected gradient or pid")
        if any(b < 0 for b in budgets.values()):
            raise ValueError(f"budgets must be >= 0, got {dict(budgets)}")
        if not 0 <= lambda_init <= lambda_max:
            raise ValueError(f"need 0 <= lambda_init <= lambda_max, got {lambda_init} and {lambda_max}")
        self.budgets = {k: float(v) for k, v in budgets.items()}
        self.method: Method = method
        self.lr = float(lr)
        self.lambda_max = float(lambda_max)
        self.kp, self.ki, self.kd, self.ema = float(kp), float(ki), float(kd), float(ema)
        self.multipliers = Multipliers(dict.fromkeys(self.budgets, float(lambda_init)))
        self._integral = dict.fromkeys(self.budgets, 0.0)
        if method == "pid" and self.ki > 0:
            # start the integral where it yields lambda_init, so a PID run starts from the same multipliers
            self._integral = dict.fromkeys(self.budgets, float(lambda_init) / self.ki)
        self._smoothed: dict[str, float | None] = dict.fromkeys(self.budgets, None)
        self.updates = 0

    @classmethod
    def from_constitution(cls, constitution: Constitution, context: Context | None = None) -> Lagrangian:
        """A Lagrangian for the constitution's hard principles (those active in ``context`` when one is given)."""
        s: LagrangianSettings = constitution.lagrangian
        return cls(
            constitution.budgets(context),
            method=s.method,
            lr=s.lr,
            lambda_init=s.lambda_init,
            lambda_max=s.lambda_max,
            kp=s.pid.kp,
            ki=s.pid.ki,
            kd=s.pid.kd,
            ema=s.pid.ema,
        )

    @property
    def values(self) -> dict[str, float]:
        """A copy of the current multipliers."""
        return dict(self.multipliers.values)

    def update(self, episode_costs: Mapping[str, float]) -> dict[str, float]:
        """One multiplier step from the mean per-episode costs ``J_k`` measured since the last update.

        Principles missing from ``episode_costs`` (none of their episodes finished) keep their multipliers.

        Returns:
            Metrics ``constitution/<id>/lambda`` (after the step) and ``constitution/<id>/cost`` (the ``J_k`` used).

        Raises:
            KeyError: ``episode_costs`` names a principle this Lagrangian does not constrain.
        """
        unknown = set(episode_costs) - set(self.budgets)
        if unknown:
            raise KeyError(f"no hard principle {sorted(unknown)}; constrained: {sorted(self.budgets)}")
        metrics: dict[str, float] = {}
        new: dict[str, float] = {}
        for pid, cost in episode_costs.items():
            cost = float(cost)
            new[pid] = self._pid_step(pid, cost) if self.method == "pid" else self._gradient_step(pid, cost)
            metrics[f"constitution/{pid}/cost"] = cost
        self.multipliers.set(new)
        self.updates += 1
        for pid in self.budgets:
            metrics[f"constitution/{pid}/lambda"] = self.multipliers.get(pid)
        return metrics

    def _clamp(self, value: float) -> float:
        return min(max(value, 0.0), self.lambda_max)

    def _gradient_step(self, pid: str, cost: float) -> float:
        return self._clamp(self.multipliers.get(pid) + self.lr * (cost - self.budgets[pid]))

    def _pid_step(self, pid: str, cost: float) -> float:
        budget = self.budgets[pid]
        integral = max(0.0, self._integral[pid] + cost - budget)
        if self.ki > 0:
            integral = min(integral, self.lambda_max / self.ki)
        self._integral[pid] = integral
        previous = self._smoothed[pid]
        smoothed = cost if previous is None else self.ema * previous + (1.0 - self.ema) * cost
        self._smoothed[pid] = smoothed
        rise = 0.0 if previous is None else max(0.0, smoothed - previous)
        return self._clamp(self.kp * (smoothed - budget) + self.ki * integral + self.kd * rise)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (JSON-able)."""
        return {
            "method": self.method,
            "budgets": dict(self.budgets),
            "lambda": self.values,
            "integral": dict(self._integral),
            "smoothed": dict(self._smoothed),
            "updates": self.updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; the method and the set of principles must match."""
        if state["method"] != self.method or set(state["lambda"]) != set(self.budgets):
            raise ValueError(
                f"state is for method {state['method']!r} over {sorted(state['lambda'])}; "
                f"this Lagrangian is {self.method!r} over {sorted(self.budgets)}"
            )
        self.multipliers.set(state["lambda"])
        self._integral = {k: float(v) for k, v in state["integral"].items()}
        self._smoothed = {k: (None if v is None else float(v)) for k, v in state["smoothed"].items()}
        self.updates = int(state["updates"])
