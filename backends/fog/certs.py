"""Certificates for a fog node (``spezichat fog init``).

Creates the same files as SpeziLLM's FogNode ``setup.sh``, in the same layout::

    <dir>/ca/ca.crt                      root CA certificate: copy it to every client
    <dir>/ca/ca.key                      root CA private key (mode 0600)
    <dir>/ca/ca.srl                      serial number of the last issued certificate
    <dir>/webservice/<host>.key          server private key (mode 0600)
    <dir>/webservice/<host>.csr          server certificate signing request
    <dir>/webservice/<host>.crt          server certificate for <host>, signed by the CA

Keys are ECDSA P-256; the server certificate carries the host name as subject
alternative name and is valid for server and client authentication.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.errors import ConfigurationError
from backends.fog.config import DEFAULT_HOST
from backends.secrets import private_directory, write_private_file

CA_DAYS = 3650
SERVER_DAYS = 365


@dataclass(frozen=True)
class NodeCertificates:
    """Paths of the files of one node's certificate set."""

    directory: Path
    host: str

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca" / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca" / "ca.key"

    @property
    def ca_serial(self) -> Path:
        return self.directory / "ca" / "ca.srl"

    @property
    def server_key(self) -> Path:
        return self.directory / "webservice" / f"{self.host}.key"

    @property
    def server_csr(self) -> Path:
        return self.directory / "webservice" / f"{self.host}.csr"

    @property
    def server_cert(self) -> Path:
        return self.directory / "webservice" / f"{self.host}.crt"

    def files(self) -> tuple[Path, ...]:
        return (
            self.ca_cert,
            self.ca_key,
            self.ca_serial,
            self.server_key,
            self.server_csr,
            self.server_cert,
        )


def _validate_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    labels = host.split(".")
    if not host or any(
        not label or len(label) > 63 or not all(c.isalnum() or c == "-" for c in label)
        for label in labels
    ):
        raise ConfigurationError(
            f"'{host}' is not a valid host name for a certificate.",
            reason="A host name is made of dot-separated labels of letters, digits and '-'.",
            suggestion=f"Use a name such as {DEFAULT_HOST}.",
        )
    return host


def _write(path: Path, data: bytes, *, private: bool) -> None:
    if private:  # a private key: atomic, mode 0600 from the first byte
        write_private_file(path, data)
        return
    private_directory(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    # os.open's mode is filtered by the umask and ignored for existing files.
    os.chmod(path, 0o644)


def create_node_certificates(
    directory: Path,
    host: str = DEFAULT_HOST,
    *,
    ip_addresses: Sequence[str] = (),
    overwrite: bool = False,
) -> NodeCertificates:
    """Issue a root CA and a server certificate for ``host`` into ``directory``.

    ``ip_addresses`` are added to the server certificate as IP subject alternative names
    (for clients that connect by address without sending SNI). Existing files are kept
    unless ``overwrite`` is true.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    host = _validate_host(host)
    try:
        ips = [ipaddress.ip_address(a) for a in ip_addresses]
    except ValueError as exc:
        raise ConfigurationError(
            "An IP address for the certificate is not valid.",
            reason=str(exc),
            suggestion="Pass addresses such as 192.168.1.20 or fd00::5.",
        ) from exc
    result = NodeCertificates(Path(directory).expanduser(), host)
    existing = [p for p in result.files() if p.exists()]
    if existing and not overwrite:
        raise ConfigurationError(
            "Node certificates already exist.",
            reason=f"{existing[0]} is already there; issuing new ones would invalidate the "
            "CA certificate every client has.",
            suggestion="Use the existing files, pick another folder, or replace them "
            "(`create_node_certificates(overwrite=True)`).",
        )

    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "spezichat fog node"),
            x509.NameAttribute(NameOID.COMMON_NAME, "SpeziLLMFog CA"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(ca=True),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "spezichat fog node"),
            x509.NameAttribute(NameOID.COMMON_NAME, host),
        ]
    )
    san = x509.SubjectAlternativeName([x509.DNSName(host), *(x509.IPAddress(ip) for ip in ips)])
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(server_name)
        .add_extension(san, critical=False)
        .add_extension(eku, critical=False)
        .sign(server_key, hashes.SHA256())
    )
    serial = x509.random_serial_number()
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(ca=False),
            critical=True,
        )
        .add_extension(san, critical=False)
        .add_extension(eku, critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    key_format = serialization.PrivateFormat.PKCS8
    no_password = serialization.NoEncryption()
    _write(result.ca_key, ca_key.private_bytes(pem, key_format, no_password), private=True)
    _write(result.ca_cert, ca_cert.public_bytes(pem), private=False)
    _write(result.ca_serial, f"{serial:X}\n".encode(), private=False)
    _write(
        result.server_key,
        server_key.private_bytes(pem, key_format, no_password),
        private=True,
    )
    _write(result.server_csr, csr.public_bytes(pem), private=False)
    _write(result.server_cert, server_cert.public_bytes(pem), private=False)
    return result


def fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint of a PEM certificate, as colon-separated hex."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _key_usage(*, ca: bool) -> Any:
    """Key usage of the root CA (signs certificates) or of the server (EC key agreement)."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
