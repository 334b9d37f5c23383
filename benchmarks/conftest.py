"""Benchmarks run separately from the tests: `python -m pytest benchmarks` (needs the bench extra)."""
