"""The hand-written moral stories shipped with Upbringing: data files (``*.yaml``) read by
``upbringing.envs.moral.storyfile``.

This folder is a package so that installing Upbringing ships the story files with it (package data).
"""
