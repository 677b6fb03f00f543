"""Diameter over TLS (RFC 6733 §13), TLS from connection start, over real loopback sockets.

Certificates (a CA, a rogue CA, server and client leaves) are made at test time with the
``cryptography`` package; each test sees only files in its own temporary directory.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from diam.constants import APP_CREDIT_CONTROL, APP_RX, ResultCode
from diam.errors import CapabilitiesExchangeFailed
from diam.identity import PeerPolicy
from diam.message import Avp
from diam.tls import TlsConfig, certificate_names
from openpcc.app import build_app, listener_specs, serve
from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
# How a refused handshake reaches a client: an alert (SSLError), a reset, or (TLS 1.3, where the
# client finishes first and learns of the refusal on its first read) an EOF.
_REFUSED = (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)


# --- certificates ---------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject: str, issuer: tuple | None, dns: list[str], *, ca: bool = False) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    issuer_key, issuer_cert = issuer if issuer else (key, None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_cert.subject if issuer_cert else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),
            critical=False,
        )
    return key, builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, key, cert) -> tuple[str, str]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """name -> (certificate PEM path, key PEM path); "ca" and "rogue-ca" are the two roots."""
    d = tmp_path_factory.mktemp("pki")
    ca = _issue("OpenPCC test CA", None, [], ca=True)
    rogue = _issue("Rogue CA", None, [], ca=True)
    out = {"ca": _write(d, "ca", *ca), "rogue-ca": _write(d, "rogue-ca", *rogue)}
    leaves = {
        "server": (ca, "server.test"),
        "client": (ca, "client.test"),
        "other": (ca, "other.test"),
        "rogue-client": (rogue, "client.test"),
        "openpcc": (ca, "openpcc.localdomain"),
    }
    for name, (issuer, host) in leaves.items():
        out[name] = _write(d, name, *_issue(host, issuer, [host]))
    return out


def _tls(pki, name: str, **kwargs) -> TlsConfig:
    cert, key = pki[name]
    return TlsConfig(cert=cert, key=key, ca=pki["ca"][0], **kwargs)


def _client_ctx(pki, name: str | None) -> ssl.SSLContext:
    """A raw TLS client context trusting the test CA, with ``name``'s certificate if given."""
    ctx = ssl.create_default_context(cafile=pki["ca"][0])
    ctx.check_hostname = False
    if name is not None:
        ctx.load_cert_chain(*pki[name])
    return ctx


async def _raw_tls(dk, port: int, ctx: ssl.SSLContext):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    return dk.RawPeer(reader, writer)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- node to node ---------------------------------------------------------------------------


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
@pytest.mark.parametrize("min_version", ["1.2", "1.3"])
def test_cer_cea_and_request_between_our_connector_and_listener(dk, pki, min_version, use_uvloop):
    async def main():
        server, port = await dk.serving(tls=_tls(pki, "server", min_version=min_version))
        client = dk.make_node("client.test", "test", tls=_tls(pki, "client"))
        peer = await client.connect("127.0.0.1", port)
        assert peer.origin_host == "server.test"
        answer = await client.request(dk.ccr("s;tls;1"), peer=peer)
        assert answer.get("Result-Code") == ResultCode.SUCCESS
        assert answer.get("Session-Id") == "s;tls;1"
        (remote,) = server.peers
        assert remote.origin_host == "client.test"
        version = remote._transport.get_extra_info("ssl_object").version()
        assert version == ("TLSv1.3" if min_version == "1.3" else version)
        assert version in ("TLSv1.2", "TLSv1.3")
        await client.close(1.0)
        await server.close(0.2)

    dk.run(main, use_uvloop=use_uvloop)


def test_client_without_certificate_is_refused_at_handshake(dk, pki, caplog):
    async def main():
        server, port = await dk.serving(tls=_tls(pki, "server"))
        with pytest.raises(_REFUSED):
            peer = await _raw_tls(dk, port, _client_ctx(pki, None))
            # TLS 1.3: the client finishes first; the server's alert arrives on the first read.
            await peer.open()
        for _ in range(50):
            if server.metrics.peer_events.get("tls_handshake_failed"):
                break
            await asyncio.sleep(0.02)
        assert server.metrics.peer_events.get("tls_handshake_failed") == 1
        assert server.connections == []
        await server.close(0.2)

    with caplog.at_level(logging.WARNING, "openpcc.diam"):
        dk.run(main)
    assert "event=tls_handshake_failed origin_host=server.test" in caplog.text


def test_client_certificate_optional_when_not_required(dk, pki):
    async def main():
        server, port = await dk.serving(tls=_tls(pki, "server", require_client_cert=False))
        bare = await _raw_tls(dk, port, _client_ctx(pki, None))
        assert (await bare.open()).get("Result-Code") == ResultCode.SUCCESS
        # a certificate that is presented is still verified and bound to Origin-Host
        named = await _raw_tls(dk, port, _client_ctx(pki, "other"))
        cea = await named.open(origin_host="client.test")
        assert cea.get("Result-Code") == ResultCode.UNKNOWN_PEER
        with pytest.raises(_REFUSED):
            rogue = await _raw_tls(dk, port, _client_ctx(pki, "rogue-client"))
            await rogue.open()
        await bare.aclose()
        await server.close(0.2)

    dk.run(main)


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_certificate_not_naming_origin_host_gets_3010_and_close(dk, pki, caplog, use_uvloop):
    async def main():
        server, port = await dk.serving(tls=_tls(pki, "server"))
        peer = await _raw_tls(dk, port, _client_ctx(pki, "other"))
        cea = await peer.open(origin_host="client.test")
        assert cea.get("Result-Code") == ResultCode.UNKNOWN_PEER
        assert "not in the TLS certificate names" in cea.get("Error-Message")
        assert await peer.closed()
        assert server.peers == []
        # the same certificate with the Origin-Host it names is accepted
        peer = await _raw_tls(dk, port, _client_ctx(pki, "other"))
        cea = await peer.open(origin_host="OTHER.test")
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        await peer.aclose()
        await server.close(0.2)

    with caplog.at_level(logging.WARNING, "openpcc.diam"):
        dk.run(main, use_uvloop=use_uvloop)
    assert "event=cer_rejected result_code=3010 origin_host=client.test" in caplog.text
    assert "other.test" in caplog.text


def test_identity_binding_can_be_turned_off(dk, pki):
    async def main():
        server, port = await dk.serving(tls=_tls(pki, "server", verify_origin_host=False))
        peer = await _raw_tls(dk, port, _client_ctx(pki, "other"))
        cea = await peer.open(origin_host="client.test")
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        await peer.aclose()
        await server.close(0.2)

    dk.run(main)


def test_connector_checks_the_server_certificate_against_the_cea_origin_host(dk, pki):
    async def main():
        # the server presents a certificate for other.test but calls itself server.test
        server, port = await dk.serving(tls=_tls(pki, "other"))
        client = dk.make_node("client.test", "test", tls=_tls(pki, "client"))
        with pytest.raises(CapabilitiesExchangeFailed, match="not in the TLS certificate names"):
            await client.connect("127.0.0.1", port, timeout=3)
        assert client.peers == []
        await client.close(0.2)
        await server.close(0.2)

    dk.run(main)


def test_allowlist_still_applies_over_tls(dk, pki):
    async def main():
        policy = PeerPolicy.parse("pgw.test")
        server, port = await dk.serving(tls=_tls(pki, "server"), policy=policy)
        peer = await _raw_tls(dk, port, _client_ctx(pki, "client"))
        cea = await peer.open(origin_host="client.test")
        assert cea.get("Result-Code") == ResultCode.UNKNOWN_PEER
        assert "allowlist" in cea.get("Error-Message")
        assert await peer.closed()
        await server.close(0.2)

    dk.run(main)


def test_wrong_ca_fails_the_handshake_and_the_listener_keeps_serving(dk, pki):
    async def main():
        server, port = await dk.serving(tls=_tls(pki, "server"))
        with pytest.raises(_REFUSED):
            peer = await _raw_tls(dk, port, _client_ctx(pki, "rogue-client"))
            await peer.open()
        # a client that does not trust the server's CA gives up on its side
        untrusting = ssl.create_default_context(cafile=pki["rogue-ca"][0])
        untrusting.check_hostname = False
        untrusting.load_cert_chain(*pki["client"])
        with pytest.raises(ssl.SSLCertVerificationError):
            await _raw_tls(dk, port, untrusting)
        good = await _raw_tls(dk, port, _client_ctx(pki, "client"))
        cea = await good.open()
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        answer = await good.request(dk.ccr("s;after-bad-ca"))
        assert answer.get("Result-Code") == ResultCode.SUCCESS
        assert [p.origin_host for p in server.peers] == ["client.test"]
        await good.aclose()
        await server.close(0.2)

    dk.run(main)


def test_tls_and_plain_listeners_side_by_side(dk, pki):
    async def main():
        tls_node, tls_port = await dk.serving(tls=_tls(pki, "server"))
        plain_node, plain_port = await dk.serving(origin_host="plain.test")
        secure = await _raw_tls(dk, tls_port, _client_ctx(pki, "client"))
        assert (await secure.open()).get("Result-Code") == ResultCode.SUCCESS
        plain = await dk.RawPeer.connect(plain_port)
        assert (await plain.open()).get("Result-Code") == ResultCode.SUCCESS
        # a plain CER on the TLS port is no ClientHello: refused, nothing answered
        confused = await dk.RawPeer.connect(tls_port)
        confused.send(dk.cer("client.test", "test", [("vsai", APP_CREDIT_CONTROL)]))
        assert await confused.closed()
        for peer in (secure, plain):
            answer = await peer.request(dk.ccr("s;both"))
            assert answer.get("Result-Code") == ResultCode.SUCCESS
        assert [p.origin_host for p in tls_node.peers] == ["client.test"]
        assert [p.origin_host for p in plain_node.peers] == ["client.test"]
        for peer in (secure, plain):
            await peer.aclose()
        await tls_node.close(0.2)
        await plain_node.close(0.2)

    dk.run(main)


def test_inband_security_tls_offer_on_plain_listener_gets_cea_without_it(dk):
    """RFC 3588 in-band TLS is not supported: the CEA leaves Inband-Security-Id out, so the peer
    decides whether to go on without TLS (RFC 6733 §6.10)."""

    async def main():
        node, port = await dk.serving()
        peer = await dk.RawPeer.connect(port)
        cer = dk.cer("client.test", "test", [("vsai", APP_CREDIT_CONTROL)])
        cer.add(Avp.new("Inband-Security-Id", 1))
        cea = await peer.request(cer)
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        assert cea.first("Inband-Security-Id") is None
        # the connection stays plain and usable
        assert (await peer.request(dk.ccr("s;plain"))).get("Result-Code") == ResultCode.SUCCESS
        await peer.aclose()
        await node.close(0.2)

    dk.run(main)


def test_certificate_names_prefer_dns_san_over_common_name():
    cert = {
        "subject": ((("commonName", "cn.test"),),),
        "subjectAltName": (("DNS", "a.test"), ("IP Address", "127.0.0.1"), ("DNS", "b.test")),
    }
    assert certificate_names(cert) == ("a.test", "b.test")
    assert certificate_names({"subject": cert["subject"]}) == ("cn.test",)
    assert certificate_names(None) == ()


def test_tls_config_rejects_bad_settings(pki):
    with pytest.raises(ValueError, match="certificate"):
        TlsConfig(cert="")
    with pytest.raises(ValueError, match="minimum version"):
        TlsConfig(cert=pki["server"][0], min_version="1.1")
    with pytest.raises(ValueError, match="ciphers 'NO-SUCH-CIPHER'"):
        _tls(pki, "server", ciphers="NO-SUCH-CIPHER").server_context()
    with pytest.raises(ValueError, match=r"certificate /nonexistent\.crt"):
        TlsConfig(cert="/nonexistent.crt").client_context()
    with pytest.raises(ValueError, match="CA bundle"):
        TlsConfig(cert=pki["server"][0], key=pki["server"][1], ca=pki["server"][1]).server_context()
    # the flat settings reach the listener's node
    settings = Settings(diameter_tls_cert=pki["server"][0], diameter_tls_min_version="1.3")
    assert listener_specs(settings)[0].tls.min_version == "1.3"
    assert listener_specs(settings)[0].tls.require_client_cert is True
    assert listener_specs(Settings())[0].tls is None


# --- settings and `openpcc run` -----------------------------------------------------------


def _private_state(tmp_path: Path) -> dict[str, str]:
    return {
        "OPENPCC_DATABASE_URL": f"sqlite:///{tmp_path}/openpcc.db",
        "OPENPCC_CDR_DIR": str(tmp_path / "cdr"),
        "OPENPCC_API_ENABLED": "false",  # the management API is not under test here
    }


def test_listeners_json_with_tls_and_plain_entries(dk, pki, monkeypatch, tmp_path):
    tls_port, plain_port = _free_port(), _free_port()
    for name, value in _private_state(tmp_path).items():
        monkeypatch.setenv(name, value)
    cert, key = pki["server"]
    monkeypatch.setenv(
        "OPENPCC_DIAMETER_LISTENERS",
        json.dumps([
            {"host": "127.0.0.1", "port": tls_port, "origin_host": "server.test",
             "origin_realm": "epc.test", "applications": ["rx"],
             "tls": {"cert": cert, "key": key, "ca": pki["ca"][0], "min_version": "1.3"}},
            {"host": "127.0.0.1", "port": plain_port, "origin_host": "plain.test",
             "origin_realm": "epc.test", "applications": ["rx"]},
        ]),
    )  # fmt: skip

    async def main():
        app = build_app(Settings())
        stop, ready = asyncio.Event(), asyncio.Event()
        serving = asyncio.create_task(serve(app, stop=stop, on_ready=lambda _: ready.set()))
        await asyncio.wait_for(ready.wait(), 5)
        secure = await _raw_tls(dk, tls_port, _client_ctx(pki, "client"))
        assert secure.writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        cea = await secure.open(apps=[("vsai", APP_RX)])
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        assert cea.get("Origin-Host") == "server.test"
        plain = await dk.RawPeer.connect(plain_port)
        cea = await plain.open(apps=[("vsai", APP_RX)])
        assert cea.get("Origin-Host") == "plain.test"
        for peer in (secure, plain):
            await peer.aclose()
        stop.set()
        await asyncio.wait_for(serving, 5)

    dk.run(main)


def test_openpcc_run_with_tls_settings_accepts_a_tls_cer(dk, pki, tmp_path):
    port = _free_port()
    cert, key = pki["openpcc"]

    async def main():
        env = dict(
            os.environ,
            OPENPCC_DIAMETER_HOST="127.0.0.1",
            OPENPCC_DIAMETER_PORT=str(port),
            OPENPCC_DIAMETER_TLS_CERT=cert,
            OPENPCC_DIAMETER_TLS_KEY=key,
            OPENPCC_DIAMETER_TLS_CA=pki["ca"][0],
            OPENPCC_DIAMETER_TLS_REQUIRE_CLIENT_CERT="true",
            OPENPCC_DIAMETER_TLS_MIN_VERSION="1.2",
            **_private_state(tmp_path),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "openpcc.cli", "run",
            cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        lines: list[str] = []
        try:
            while not any("event=ready" in line for line in lines):
                line = await asyncio.wait_for(proc.stderr.readline(), 20)
                assert line, f"openpcc run exited early: {lines}"
                lines.append(line.decode())
            assert any("event=listening" in ln and "tls=True" in ln for ln in lines), lines
            with pytest.raises(_REFUSED):
                bare = await _raw_tls(dk, port, _client_ctx(pki, None))
                await bare.open()
            peer = await _raw_tls(dk, port, _client_ctx(pki, "client"))
            cea = await peer.open(apps=[("vsai", APP_RX)])
            assert cea.get("Result-Code") == ResultCode.SUCCESS
            assert cea.get("Origin-Host") == "openpcc.localdomain"
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
            await peer.aclose()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    dk.run(main, timeout=60)
