"""Upbringing: raise agents with language-model policies through a developmental curriculum.

The project's top-level folders are this package's subpackages (installed from where they stand):
``upbringing.envs`` (worlds), ``upbringing.agents`` (policies), ``upbringing.constitutions`` (principles that shape
the reward), ``upbringing.feedback`` (raters and reward models) and ``upbringing.curriculum`` (the engine and CLI).
"""

__version__ = "0.1.0"
