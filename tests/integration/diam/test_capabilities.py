"""CER/CEA (RFC 6733 §5.3) against a listening node, over real loopback sockets."""

from __future__ import annotations

import logging

from diam.constants import (
    APP_CREDIT_CONTROL,
    APP_GX,
    APP_RELAY,
    APP_RX,
    FLAG_ERROR,
    VENDOR_3GPP,
    ResultCode,
)
from diam.identity import PeerPolicy


def _vsai(cea):
    return {
        (v.get("Vendor-Id"), v.get("Auth-Application-Id"))
        for v in cea["Vendor-Specific-Application-Id"]
    }


def test_cea_advertises_identity_and_each_application_as_vsai(dk):
    async def main():
        node, port = await dk.serving(apps=("gx", "rx", "ro"))
        peer = await dk.RawPeer.connect(port)
        cea = await peer.open(apps=[("vsai", APP_RX)])
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        assert not cea.is_error
        assert cea.get("Origin-Host") == "server.test"
        assert cea.get("Origin-Realm") == "server.test"
        assert [str(a.value) for a in cea["Host-IP-Address"]] == ["127.0.0.1"]
        assert cea.get("Vendor-Id") == 0
        assert cea.get("Product-Name") == "OpenPCC"
        assert cea.get("Origin-State-Id") == node.origin_state_id
        assert cea.first("Firmware-Revision") is not None
        assert not cea.first("Product-Name").is_mandatory  # RFC 6733 §4.5
        assert [a.value for a in cea["Supported-Vendor-Id"]] == [VENDOR_3GPP]
        assert _vsai(cea) == {
            (VENDOR_3GPP, APP_GX),
            (VENDOR_3GPP, APP_RX),
            (VENDOR_3GPP, APP_CREDIT_CONTROL),
        }
        assert [a.value for a in cea["Auth-Application-Id"]] == [APP_CREDIT_CONTROL]
        # the node lists the peer as Open with the common application
        assert [(p.origin_host, p.applications) for p in node.peers] == [
            ("client.test", frozenset({APP_RX}))
        ]
        await peer.aclose()
        await node.close(0.2)

    dk.run(main)


def test_cer_with_several_applications_is_accepted_when_one_is_served(dk):
    async def main():
        node, port = await dk.serving(apps=("ro",))
        peer = await dk.RawPeer.connect(port)
        cea = await peer.open(apps=[APP_GX, ("vsai", APP_RX), ("vsai", APP_CREDIT_CONTROL)])
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        assert node.peers[0].applications == frozenset({APP_CREDIT_CONTROL})
        await node.close(0.2)

    dk.run(main)


def test_relay_application_counts_as_common(dk):
    async def main():
        node, port = await dk.serving(apps=("ro",))
        peer = await dk.RawPeer.connect(port)
        cea = await peer.open(apps=[APP_RELAY])
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        await node.close(0.2)

    dk.run(main)


def test_no_common_application_is_answered_5010_and_closed(dk, caplog):
    async def main():
        node, port = await dk.serving(apps=("ro",))
        peer = await dk.RawPeer.connect(port)
        cea = await peer.open(apps=[APP_GX, ("vsai", APP_RX)])
        assert cea.get("Result-Code") == ResultCode.NO_COMMON_APPLICATION
        assert not cea.is_error  # 5xxx is a permanent failure, not a protocol error
        assert cea.get("Origin-Host") == "server.test"
        assert await peer.closed()
        assert node.peers == []
        await node.close(0.2)

    with caplog.at_level(logging.INFO, logger="openpcc.diam"):
        dk.run(main)
    assert any(
        "event=cer_rejected" in r.message and "result_code=5010" in r.message
        for r in caplog.records
    )


def test_unknown_peer_is_answered_3010_and_closed(dk, caplog):
    async def main():
        policy = PeerPolicy.parse("pgw.epc.test, *@ims.test")
        node, port = await dk.serving(policy=policy)
        stranger = await dk.RawPeer.connect(port)
        cea = await stranger.open(origin_host="intruder.test", realm="evil.test")
        assert cea.get("Result-Code") == ResultCode.UNKNOWN_PEER
        assert cea.flags & FLAG_ERROR
        assert await stranger.closed()
        friends = []  # keep references: a collected StreamWriter closes its socket
        for host, realm in (("pgw.epc.test", "epc.test"), ("pcscf.ims.test", "ims.test")):
            friends.append(await dk.RawPeer.connect(port))
            cea = await friends[-1].open(origin_host=host, realm=realm)
            assert cea.get("Result-Code") == ResultCode.SUCCESS
        assert sorted(p.origin_host for p in node.peers) == ["pcscf.ims.test", "pgw.epc.test"]
        await node.close(0.2)

    with caplog.at_level(logging.INFO, logger="openpcc.diam"):
        dk.run(main)
    rejected = [r.message for r in caplog.records if "event=cer_rejected" in r.message]
    assert len(rejected) == 1 and "origin_host=intruder.test" in rejected[0]


def test_empty_allowlist_accepts_loopback_with_warning_only(dk, caplog):
    async def main():
        node, port = await dk.serving(policy=PeerPolicy())
        peer = await dk.RawPeer.connect(port)
        assert (await peer.open()).get("Result-Code") == ResultCode.SUCCESS
        await node.close(0.2)

    with caplog.at_level(logging.INFO, logger="openpcc.diam"):
        dk.run(main)
    accepted = [r for r in caplog.records if "event=cer_accepted" in r.message]
    assert accepted[0].levelno == logging.WARNING and "loopback" in accepted[0].message
    assert PeerPolicy().check("x", "y", "192.0.2.1").allowed is False


def test_second_connection_from_same_origin_host_replaces_the_first(dk):
    async def main():
        node, port = await dk.serving()
        first = await dk.RawPeer.connect(port)
        await first.open()
        second = await dk.RawPeer.connect(port)
        assert (await second.open()).get("Result-Code") == ResultCode.SUCCESS
        assert await first.closed()
        assert len(node.peers) == 1
        answer = await second.request(dk.ccr("s;after-replace"))
        assert answer.get("Result-Code") == ResultCode.SUCCESS
        await node.close(0.2)

    dk.run(main)


def test_initiator_side_cer_cea_and_rejection(dk):
    async def main():
        server, port = await dk.serving(apps=("ro",))
        client = dk.make_node("client.test", "test", apps=("ro",))
        peer = await client.connect("127.0.0.1", port)
        assert (peer.origin_host, peer.origin_realm) == ("server.test", "server.test")
        assert peer.applications == frozenset({APP_CREDIT_CONTROL})
        gx_client = dk.make_node("pcef.test", "test", apps=("gx",))
        try:
            await gx_client.connect("127.0.0.1", port)
        except Exception as exc:  # CapabilitiesExchangeFailed carries the CEA's code
            assert exc.result_code == ResultCode.NO_COMMON_APPLICATION
        else:
            raise AssertionError("CER with no common application was accepted")
        await client.close()
        await server.close(0.2)

    dk.run(main)
