"""Errors raised while pricing (the OCS maps them to Diameter Result-Codes)."""

from __future__ import annotations


class RatingError(ValueError):
    """Usage that the plan cannot price."""


class UnknownNumber(RatingError):
    """Not an E.164 number, or no destination prefix matches it (and there is no ``*``)."""


class NoRate(RatingError):
    """The plan version in force has no rate for this destination set, rating group or service."""
