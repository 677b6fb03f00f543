"""OpenPCC: CLI, settings loading and wiring of the domains into one process."""

__version__ = "0.1.0"
