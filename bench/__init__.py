"""Benchmarks, run on demand (``make bench`` or ``python -m bench NAME``); never part of tests."""
