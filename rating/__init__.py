"""Pure pricing: tariff lookup, time bands, increments, tiers, bundles. No I/O."""
