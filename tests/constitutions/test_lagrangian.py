"""Lagrange multipliers: rise while cost > budget, 0 while under, never negative; PID; exact resume."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from upbringing.constitutions import Lagrangian, load_constitution


def test_lambda_rises_while_cost_is_over_budget_and_is_clamped():
    lag = Lagrangian({"no_harm": 0.1}, lr=0.5, lambda_max=2.0)
    values = [lag.update({"no_harm": 0.6})["constitution/no_harm/lambda"] for _ in range(12)]
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert max(values) == 2.0 and values[-1] == 2.0


def test_lambda_is_zero_while_under_budget_and_never_negative():
    lag = Lagrangian({"no_harm": 0.2, "honesty": 0.0}, lr=0.3)
    for _ in range(5):
        metrics = lag.update({"no_harm": 0.1, "honesty": 0.0})
        assert metrics["constitution/no_harm/lambda"] == 0.0 and metrics["constitution/honesty/lambda"] == 0.0
    lag.update({"no_harm": 1.2})  # over budget once: rises
    assert lag.values["no_harm"] == pytest.approx(0.3)
    for _ in range(10):  # back under budget: falls to 0 and stays there
        lag.update({"no_harm": 0.0})
    assert lag.values["no_harm"] == 0.0


@pytest.mark.parametrize("method", ["gradient", "pid"])
def test_multipliers_stay_within_bounds_for_any_costs(method):
    rng = np.random.default_rng(0)
    lag = Lagrangian({"a": 0.5, "b": 0.0}, method=method, lr=0.7, kp=1.0, ki=0.5, kd=2.0, ema=0.3, lambda_max=3.0)
    for _ in range(300):
        lag.update({"a": float(rng.exponential(0.5)), "b": float(rng.choice([0.0, 0.0, 3.0]))})
        assert all(0.0 <= v <= 3.0 for v in lag.values.values())


def test_pid_matches_gradient_ascent_with_integral_gain_only():
    costs = [0.9, 0.9, 0.4, 0.0, 0.0, 0.0, 0.7, 0.1]
    grad = Lagrangian({"p": 0.2}, lr=0.3)
    pid = Lagrangian({"p": 0.2}, method="pid", kp=0.0, ki=0.3, kd=0.0)
    for c in costs:
        expected = grad.update({"p": c})["constitution/p/lambda"]
        assert pid.update({"p": c})["constitution/p/lambda"] == pytest.approx(expected)


def test_pid_reacts_faster_and_recovers_without_windup():
    grad = Lagrangian({"p": 0.1}, lr=0.05)
    pid = Lagrangian({"p": 0.1}, method="pid", kp=1.0, ki=0.05, kd=0.5)
    first = (grad.update({"p": 0.6})["constitution/p/lambda"], pid.update({"p": 0.6})["constitution/p/lambda"])
    assert first[1] > 10 * first[0]  # the P term responds to the violation at once
    assert pid.update({"p": 1.0})["constitution/p/lambda"] > pid.kp * 0.9  # the D term adds to a rising cost
    for _ in range(3):
        pid.update({"p": 0.0})
    # under budget: the P term pulls lambda down while the clamped integral stays small
    assert pid.values["p"] < 0.1


def test_missing_costs_keep_multipliers_and_unknown_principles_are_rejected():
    lag = Lagrangian({"a": 0.0, "b": 0.0}, lr=1.0)
    metrics = lag.update({"a": 0.5})
    assert lag.values == {"a": 0.5, "b": 0.0}
    assert set(metrics) == {"constitution/a/lambda", "constitution/b/lambda", "constitution/a/cost"}
    assert lag.update({}) and lag.values == {"a": 0.5, "b": 0.0}
    with pytest.raises(KeyError, match="typo"):
        lag.update({"typo": 1.0})
    with pytest.raises(ValueError):
        Lagrangian({"a": -1.0})


@pytest.mark.parametrize("method", ["gradient", "pid"])
def test_state_dict_resumes_exactly(method):
    costs = [0.8, 0.3, 0.9, 0.0, 0.5, 0.05, 0.6, 0.2]
    kwargs = {"method": method, "lr": 0.2, "kp": 0.5, "ki": 0.1, "kd": 0.3, "ema": 0.5}
    whole = Lagrangian({"p": 0.25, "q": 0.1}, **kwargs)
    first = Lagrangian({"p": 0.25, "q": 0.1}, **kwargs)
    for c in costs[:4]:
        whole.update({"p": c, "q": c / 2})
        first.update({"p": c, "q": c / 2})
    resumed = Lagrangian({"p": 0.25, "q": 0.1}, **kwargs)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    for c in costs[4:]:
        assert resumed.update({"p": c, "q": c / 2}) == whole.update({"p": c, "q": c / 2})
    assert resumed.state_dict() == whole.state_dict()
    with pytest.raises(ValueError):
        Lagrangian({"other": 0.1}, **kwargs).load_state_dict(whole.state_dict())


def test_from_constitution_takes_budgets_and_settings_from_the_file():
    default = Lagrangian.from_constitution(load_constitution("default"))
    assert default.budgets["do_no_harm"] == 0.05 and default.method == "gradient" and default.lambda_max == 20.0
    assert "honesty" not in default.budgets  # soft principles have no multiplier
    layered = Lagrangian.from_constitution(load_constitution("layered"))
    assert layered.method == "pid" and (layered.kp, layered.ki, layered.kd, layered.ema) == (0.5, 0.05, 0.2, 0.5)
    assert set(default.values.values()) == {0.0}
