"""Ink stories shipped with Upbringing: ``*.ink`` sources and their compiled ``*.json`` (``moral/Ink-v0``)."""
