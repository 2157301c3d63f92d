"""Benchmark runners behind `rag eval`: the library side of the suites in evals/."""
