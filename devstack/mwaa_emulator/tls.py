"""A local CA (trustme) and a server certificate for 127.0.0.1 and localhost, kept in the state dir.

Clients trust `TlsFiles.ca_bundle` (e.g. REQUESTS_CA_BUNDLE); the web servers present the leaf,
which the CA signs: strict X.509 verification (Python 3.13's default) refuses a self-signed leaf.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509

from devstack.paths import write_private_file

SERVER_NAMES = ("localhost", "127.0.0.1")
VALIDITY = datetime.timedelta(days=30)
RENEW_BEFORE = datetime.timedelta(days=1)


@dataclass(frozen=True)
class TlsFiles:
    ca_bundle: Path
    certificate: Path
    private_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certificate, self.private_key)
        return context


def tls_files_in(directory: Path) -> TlsFiles:
    """Where the CA, certificate and key of `directory` live (made by ensure_tls_files)."""
    return TlsFiles(
        ca_bundle=directory / "mwaa-emulator-ca.pem",
        certificate=directory / "mwaa-emulator-cert.pem",
        private_key=directory / "mwaa-emulator-key.pem",
    )


def ensure_tls_files(directory: Path) -> TlsFiles:
    """Reuse the files in `directory` while valid for a day more; else make new ones."""
    files = tls_files_in(directory)
    if not _still_valid(files):
        _write_new_files(files)
    return files


def _still_valid(files: TlsFiles) -> bool:
    if not all(path.exists() for path in (files.ca_bundle, files.certificate, files.private_key)):
        return False
    try:
        certificate = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    except ValueError:
        return False
    return certificate.not_valid_after_utc - _now() > RENEW_BEFORE


def _write_new_files(files: TlsFiles) -> None:
    files.ca_bundle.parent.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="dagtrigger", organization_unit_name="MWAA emulator")
    now = _now()
    leaf = authority.issue_cert(
        *SERVER_NAMES,
        common_name=SERVER_NAMES[0],
        not_before=now - datetime.timedelta(minutes=5),
        not_after=now + VALIDITY,
    )
    write_private_file(files.private_key, leaf.private_key_pem.bytes())
    leaf.cert_chain_pems[0].write_to_path(files.certificate)
    authority.cert_pem.write_to_path(files.ca_bundle)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
