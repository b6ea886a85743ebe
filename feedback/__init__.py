"""Simulated human feedback: raters, preference queries, learned reward models, and the reward term they give.

Modules (import what you need; only :mod:`feedback.reward_model` and the modules built on it load torch):

- :mod:`feedback.data`: segments and preferences, and their JSONL format;
- :mod:`feedback.raters`: simulated raters with B-Pref's knobs, rater pools, inter-rater agreement;
- :mod:`feedback.config`: the typed ``feedback:`` block of a stage config;
- :mod:`feedback.features`: step features (numeric observation, action, optional text embedding);
- :mod:`feedback.reward_model`: the Bradley-Terry reward-model ensemble, its metrics, the per-step scorer;
- :mod:`feedback.queries`: query budgets, schedules, uniform and active selection;
- :mod:`feedback.oversight`: an AI judge labelling most pairs, simulated humans spot-checking;
- :mod:`feedback.alarm`: the over-optimisation alarm;
- :mod:`feedback.wrapper`: the ``FeedbackReward`` wrapper (term ``feedback``);
- :mod:`feedback.loop`: the ``FeedbackLoop`` the curriculum runner drives chunk by chunk;
- :mod:`feedback.terminal`: answering a run's queries in the terminal.
"""
