"""Benchmark suites of rag: each runs from one command and compares against a baseline in the same run."""
