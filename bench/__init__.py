"""Benchmarks with their own runner (``make bench``); never part of the test run."""
