"""Benchmarks: each ``bench/<name>.py`` runs as ``python -m bench.<name>`` and prints figures."""
