"""The policy section of the provisioning file: validation, idempotent apply, catalog view."""

from __future__ import annotations

import asyncio
from datetime import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from openpcc.database import create_engine, upgrade
from policy import provisioning
from policy.catalog import PolicyCatalog, normalise_msisdn
from policy.decision import Ambr, ExhaustionAction
from policy.models import PolicyApn, PolicySubscriber
from policy.store import GroupCommitWriter

YAML = """
plans: [{name: prepaid, tariff: demo}]        # other domains' sections are ignored here
policy:
  profiles:
    - name: volte
      apns:
        - apn: internet
          qci: 9
          arp: {priority: 8}
          ambr: {ul: 50000000, dl: 100000000}
          predefined_rules: [default-internet]
          allowances: [{monitoring_key: fair-use, octets: 1000, throttled: {ul: 1000, dl: 1000}}]
          time_variants: [{name: night, start: "23:00", end: "06:00", ambr: {ul: 2, dl: 4}}]
          on_credit_exhausted: {action: throttle, ambr: {ul: 64000, dl: 64000}}
        - {apn: "*", qci: 8, arp: {priority: 9}, ambr: {ul: 1, dl: 1}}
  subscribers:
    - {imsi: "001010000000001", msisdn: "491700000001", profile: volte}
"""


def test_load_apply_is_idempotent_and_feeds_the_catalog(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(YAML)
    spec = provisioning.load(path)
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    provisioning.apply(engine, spec)
    provisioning.apply(engine, spec)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(PolicyApn)).scalar() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(PolicySubscriber)).scalar() == 1

    async def check() -> None:
        catalog = PolicyCatalog(engine, GroupCommitWriter(engine))
        await catalog.reload()
        internet = catalog.apn_policy("volte", "INTERNET")
        assert internet is not None and internet.ambr == Ambr(50_000_000, 100_000_000)
        assert internet.allowances[0].throttled == Ambr(1000, 1000)
        assert internet.time_variants[0].start == time(23, 0)
        assert internet.exhaustion_action is ExhaustionAction.THROTTLE
        assert catalog.apn_policy("volte", "other").qci == 8  # the "*" policy
        assert catalog.apn_policy("nope", "internet") is None
        sub = await catalog.subscriber(None, "tel:+491700000001")
        assert sub is not None and sub.profile == "volte"
        assert await catalog.subscriber("001019999999999", None) is None

    asyncio.run(check())
    engine.dispose()


@pytest.mark.parametrize(
    "bad",
    [
        {"subscribers": [{"imsi": "001010000000001", "profile": "missing"}]},
        {"subscribers": [{"profile": "x"}], "profiles": [{"name": "x", "apns": []}]},
        {"profiles": [{"name": "x", "apns": [{"apn": "a", "qci": 9, "arp": {"priority": 1},
                       "ambr": {"ul": 1, "dl": 1},
                       "on_credit_exhausted": {"action": "throttle"}}]}]},
    ],
)  # fmt: skip
def test_invalid_sections_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        provisioning.PolicyProvisioning.model_validate(bad)


def test_msisdn_normalisation() -> None:
    assert normalise_msisdn("tel:+491700000001") == "491700000001"
    assert normalise_msisdn("sip:+491700000001@ims.test;user=phone") == "491700000001"
    assert normalise_msisdn("") is None
