"""The API stack fixture (tests/fixtures/api.py)."""

from tests.fixtures.api import stack

__all__ = ["stack"]
