"""Node certificates (`spezichat fog init`): files, permissions, and that TLS accepts them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from backends.errors import ConfigurationError
from backends.fog.certs import NodeCertificates, create_node_certificates, fingerprint
from backends.fog.serve import API_KEY_FILE
from tui.advice import cli_advice
from tui.cli import main


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_of_the_original_setup_script(node_certs: NodeCertificates) -> None:
    root = node_certs.directory
    names = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert names == {
        "ca/ca.crt",
        "ca/ca.key",
        "ca/ca.srl",
        "webservice/spezillmfog.local.key",
        "webservice/spezillmfog.local.csr",
        "webservice/spezillmfog.local.crt",
    }
    assert mode(node_certs.ca_key) == 0o600
    assert mode(node_certs.server_key) == 0o600
    assert mode(node_certs.ca_cert) == 0o644


def test_server_certificate_is_for_the_host_and_signed_by_the_ca(
    node_certs: NodeCertificates,
) -> None:
    ca = x509.load_pem_x509_certificate(node_certs.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(node_certs.server_cert.read_bytes())
    assert server.issuer == ca.subject
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["spezillmfog.local"]
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    serial = node_certs.ca_serial.read_text().strip()
    assert int(serial, 16) == server.serial_number
    # The CSR is the request the certificate answers.
    csr = x509.load_pem_x509_csr(node_certs.server_csr.read_bytes())
    assert csr.public_key() == server.public_key()
    # A strict (RFC 5280 / web PKI) verifier accepts the chain for the host name only.
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    builder = PolicyBuilder().store(Store([ca]))
    chain = builder.build_server_verifier(x509.DNSName("spezillmfog.local")).verify(server, [])
    assert chain[-1] == ca
    with pytest.raises(VerificationError):
        builder.build_server_verifier(x509.DNSName("elsewhere.local")).verify(server, [])


def test_refuses_to_overwrite_without_force(node_certs: NodeCertificates) -> None:
    before = node_certs.ca_cert.read_bytes()
    with pytest.raises(ConfigurationError) as caught:
        create_node_certificates(node_certs.directory)
    assert "already exist" in caught.value.description
    assert "overwrite=True" in caught.value.suggestion
    assert "--force" in cli_advice(caught.value)
    assert node_certs.ca_cert.read_bytes() == before


def test_host_and_ip_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_node_certificates(tmp_path / "a", "bad host!")
    assert "not a valid host name" in caught.value.description
    with pytest.raises(ConfigurationError):
        create_node_certificates(tmp_path / "b", ip_addresses=["300.1.1.1"])
    certs = create_node_certificates(tmp_path / "c", "node1.local", ip_addresses=["192.0.2.7"])
    server = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert certs.server_cert.name == "node1.local.crt"


def test_fog_init_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "node"
    assert main(["fog", "init", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    certs = NodeCertificates(directory, "spezillmfog.local")
    key_file = directory / API_KEY_FILE
    for path in (*certs.files(), key_file):
        assert path.is_file()
        assert str(path) in out
    assert mode(key_file) == 0o600
    assert len(key_file.read_text().strip()) >= 32
    assert fingerprint(certs.ca_cert) in out
    # A second run keeps the CA every client already trusts.
    assert main(["fog", "init", "--dir", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "already exist" in err and "--force" in err
    old_key = key_file.read_text()
    assert main(["fog", "init", "--dir", str(directory), "--force"]) == 0
    assert key_file.read_text() != old_key
