"""Reading several AVPs of a level in one pass (Fields), and an answer encoded once (freeze)."""

from diam.avp import Fields
from diam.constants import APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL
from diam.message import Avp, Message


def _ccr() -> Message:
    return Message.request(CMD_CREDIT_CONTROL, APP_CREDIT_CONTROL, [
        ("Session-Id", "scscf.test;1;2"),
        ("Origin-Host", "scscf.test"),
        ("Multiple-Services-Credit-Control", [("Rating-Group", 100)]),
        ("CC-Request-Type", 2),
        ("Multiple-Services-Credit-Control", [("Rating-Group", 200)]),
        ("CC-Request-Type", 3),
    ])  # fmt: skip


def test_fields_pick_first_single_and_every_repeated_instance() -> None:
    msg = Message.decode(_ccr().encode())
    fields = Fields(("CC-Request-Type", "Destination-Host", "Session-Id"),
                    ("Multiple-Services-Credit-Control", "Subscription-Id"))  # fmt: skip
    kind, host, session, mscc, subscriptions = fields(msg.avps)
    assert kind.value == 2  # the first instance
    assert host is None and session.value == "scscf.test;1;2"
    assert [m.get("Rating-Group") for m in mscc] == [100, 200]
    assert subscriptions == []
    (rating_group,) = Fields(("Rating-Group",))(mscc[1].value)
    assert rating_group.value == 200


def test_a_frozen_answer_reuses_its_octets_under_new_ids_and_appended_avps() -> None:
    request = Message.decode(_ccr().encode())
    answer = request.answer(2001, ("CC-Request-Type", 2))
    stored = answer.freeze()
    assert Message.decode(stored).get("Result-Code") == 2001
    answer.hop_by_hop, answer.end_to_end = 7, 9
    answer.add(("Origin-Host", "ocs.test"), ("Origin-Realm", "test"))
    fresh = request.answer(2001, ("CC-Request-Type", 2))
    fresh.hop_by_hop, fresh.end_to_end = 7, 9
    fresh.add(("Origin-Host", "ocs.test"), ("Origin-Realm", "test"))
    assert answer.encode() == fresh.encode()
    sent = Message.decode(answer.encode(), validate=True)
    assert (sent.hop_by_hop, sent.end_to_end) == (7, 9)
    assert sent.get("Origin-Realm") == "test" and sent.get("Result-Code") == 2001


def test_a_frozen_message_whose_avps_were_replaced_is_encoded_afresh() -> None:
    answer = Message.decode(_ccr().encode()).answer(2001, ("CC-Request-Type", 2))
    answer.freeze()
    answer.avps[-1] = Avp.new("CC-Request-Type", 3)
    assert Message.decode(answer.encode()).get("CC-Request-Type") == 3
    answer.avps.pop()
    assert Message.decode(answer.encode()).get("CC-Request-Type") is None
