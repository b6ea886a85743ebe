"""Test-only environments and utilities (importable as ``helpers`` in tests)."""
