"""The content of the generated moral stories: data files (``common.yaml`` and one ``<family>.yaml`` per template
family) read and checked by ``upbringing.envs.moral.templatefile``; the format is described in
``envs/moral/STORY_FORMAT.md`` ("Generated stories").

This folder is a package so that installing Upbringing ships the template files with it (package data).
"""
