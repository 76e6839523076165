"""Benchmarks: both trainers and their peers timed side by side in one process (`lstm-bench`)."""
