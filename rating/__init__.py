"""Pure pricing: tariff lookup, time bands, increments, connect fee, tiers, bundles. No I/O.

Public API: :func:`rating.loader.load_plan` (YAML + CSV → compiled :class:`rating.plan.Plan`),
:mod:`rating.engine` (``price``, ``grant``, ``enquire``; usages ``Voice``, ``Data``, ``Events``),
:mod:`rating.bundles` (``consume``, ``renew``, ``period_bounds``). Money out is ``int`` minor
units; rates are ``Decimal``.
"""
