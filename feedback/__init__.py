"""Simulated human feedback: raters, preference queries, learned reward models, and the reward term they give.

Modules (import what you need; only :mod:`upbringing.feedback.reward_model` and the modules built on it load torch):

- :mod:`upbringing.feedback.data`: segments and preferences, and their JSONL format;
- :mod:`upbringing.feedback.raters`: simulated raters with B-Pref's knobs, rater pools, inter-rater agreement;
- :mod:`upbringing.feedback.config`: the typed ``feedback:`` block of a stage config;
- :mod:`upbringing.feedback.features`: step features (numeric observation, action, optional text embedding);
- :mod:`upbringing.feedback.reward_model`: the Bradley-Terry reward-model ensemble, its metrics, the per-step scorer;
- :mod:`upbringing.feedback.queries`: query budgets, schedules, uniform and active selection;
- :mod:`upbringing.feedback.oversight`: an AI judge labelling most pairs, simulated humans spot-checking;
- :mod:`upbringing.feedback.alarm`: the over-optimisation alarm;
- :mod:`upbringing.feedback.wrapper`: the ``FeedbackReward`` wrapper (term ``feedback``);
- :mod:`upbringing.feedback.loop`: the ``FeedbackLoop`` the curriculum runner drives chunk by chunk;
- :mod:`upbringing.feedback.terminal`: answering a run's queries in the terminal.
"""
