"""Benchmarks: each ``bench/<name>.py`` runs with ``python -m bench.<name>`` and prints its figures."""
