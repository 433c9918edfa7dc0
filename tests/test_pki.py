"""Federation PKI: CA and site certificates, CSR checks, key files, CLI, and one real mTLS run."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import subprocess
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from node import pki, pki_cli
from secagg.crypto import SigningKey, verify_signature

DER = serialization.Encoding.DER


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def public_der(key) -> bytes:
    return key.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ca"
    pki.init_ca(d, name="Test Federation CA", days=30)
    return d


def make_csr(
    cn: str,
    sans: list[x509.GeneralName] | None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> x509.CertificateSigningRequest:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


# -- site names ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "0", "site-1", "hospital-a", "a" * 63, "a-b-c9"])
def test_valid_site_names(name: str) -> None:
    assert pki.validate_site_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-a", "a-", "A", "Site", "a_b", "a.b", "a b", " a", "a" * 64, "é", "a\n", 5, None]
)
def test_invalid_site_names_name_the_rule(name: object, tmp_path: Path, ca_dir: Path) -> None:
    with pytest.raises(pki.PkiError, match="1-63 characters of a-z, 0-9 and '-'"):
        pki.validate_site_name(name)
    with pytest.raises(pki.PkiError, match="1-63 characters"):
        pki.request_site(tmp_path / "site", name)  # type: ignore[arg-type]
    with pytest.raises(pki.PkiError, match="1-63 characters"):
        pki.issue_site(ca_dir, name, tmp_path / "site")  # type: ignore[arg-type]
    assert not (tmp_path / "site").exists() or not any((tmp_path / "site").iterdir())


# -- the CA ---------------------------------------------------------------------------------
def test_ca_certificate(ca_dir: Path) -> None:
    files = pki.CaFiles.in_directory(ca_dir)
    assert mode(files.key) == 0o600 and mode(files.certificate) == 0o644
    cert = load_cert(files.certificate)
    cert.verify_directly_issued_by(cert)  # self-signed, signature checks
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test Federation CA"
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    assert isinstance(cert.public_key().curve, ec.SECP384R1)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)
    key = serialization.load_pem_private_key(files.key.read_bytes(), None)
    assert public_der(key.public_key()) == public_der(cert.public_key())
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=30) <= lifetime <= dt.timedelta(days=30, minutes=6)
    assert pki.read_ca_certificate(ca_dir) == files.certificate.read_bytes()


@pytest.mark.parametrize("days", [0, -1, pki.MAX_DAYS + 1, 1.5, True])
def test_days_out_of_range(tmp_path: Path, days: object) -> None:
    with pytest.raises(pki.PkiError, match=f"1..{pki.MAX_DAYS}"):
        pki.init_ca(tmp_path / "ca", days=days)  # type: ignore[arg-type]


# -- site certificates ----------------------------------------------------------------------
def test_site_request_sign_and_verify(tmp_path: Path, ca_dir: Path) -> None:
    site_dir = tmp_path / "hospital-a"
    files = pki.request_site(site_dir, "hospital-a")
    assert files == pki.SiteFiles.in_directory(site_dir, "hospital-a")
    assert mode(files.key) == 0o600 and mode(files.signing_key) == 0o600
    assert mode(files.csr) == 0o644 and mode(files.signing_public) == 0o644
    assert not files.certificate.exists()
    with pytest.raises(pki.PkiError, match="no certificate"):
        pki.read_tls_identity(files)

    csr = x509.load_pem_x509_csr(files.csr.read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=hospital-a"

    cert_path = pki.sign_request(ca_dir, files.csr, days=10)
    assert cert_path == files.certificate and mode(cert_path) == 0o644
    ca = load_cert(ca_dir / "ca.crt")
    cert = load_cert(cert_path)
    cert.verify_directly_issued_by(ca)  # issuer name and signature
    assert cert.subject.rfc4514_string() == "CN=hospital-a"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.DNSName("hospital-a")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert isinstance(cert.public_key().curve, ec.SECP256R1)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=10, minutes=6)

    # Full path validation with pyca's RFC 5280 verifier, both TLS roles.
    store = verification.Store([ca])
    builder = verification.PolicyBuilder().store(store)
    client = builder.build_client_verifier().verify(cert, [])
    assert client.subjects == [x509.DNSName("hospital-a")]
    builder.build_server_verifier(x509.DNSName("hospital-a")).verify(cert, [])
    with pytest.raises(verification.VerificationError):
        builder.build_server_verifier(x509.DNSName("bank-b")).verify(cert, [])

    # The TLS identity and the protocol signing key.
    key_pem, cert_pem = pki.read_tls_identity(files)
    key = serialization.load_pem_private_key(key_pem, None)
    assert public_der(key.public_key()) == public_der(cert.public_key())
    assert pki.certificate_site_name(cert_pem) == "hospital-a"
    signing = pki.load_signing_key(files.signing_key)
    assert isinstance(signing, SigningKey)
    public = pki.load_signing_public(files.signing_public)
    assert signing.public == public and len(public) == 32
    assert verify_signature(public, b"round config", signing.sign(b"round config"))
    assert files.signing_key.read_text() == signing.seed_bytes().hex() + "\n"
    assert "seed=<hidden>" in repr(signing) and signing.seed_bytes().hex() not in repr(signing)

    # A second issuance gets a different random serial.
    other = pki.sign_request(ca_dir, files.csr, out=tmp_path / "again.crt")
    assert load_cert(other).serial_number != cert.serial_number


def test_issue_site_in_one_step(tmp_path: Path, ca_dir: Path) -> None:
    files = pki.issue_site(ca_dir, "bank-b", tmp_path / "out", days=5)
    for p in (files.key, files.csr, files.certificate, files.signing_key, files.signing_public):
        assert p.is_file() and p.parent == tmp_path / "out"
    assert mode(files.key) == 0o600 and mode(files.signing_key) == 0o600
    load_cert(files.certificate).verify_directly_issued_by(load_cert(ca_dir / "ca.crt"))
    assert pki.certificate_site_name(files.certificate) == "bank-b"
    key_pem, cert_pem = pki.read_tls_identity(files)
    assert b"PRIVATE KEY" in key_pem and b"CERTIFICATE" in cert_pem


def test_read_tls_identity_checks_key_and_name(tmp_path: Path, ca_dir: Path) -> None:
    a = pki.issue_site(ca_dir, "site-a", tmp_path)
    b = pki.issue_site(ca_dir, "site-b", tmp_path)
    swapped = pki.SiteFiles(
        name="site-a",
        key=a.key,
        csr=a.csr,
        certificate=b.certificate,
        signing_key=a.signing_key,
        signing_public=a.signing_public,
    )
    with pytest.raises(pki.PkiError, match="is not for the key"):
        pki.read_tls_identity(swapped)
    renamed = pki.SiteFiles(
        name="site-b",
        key=a.key,
        csr=a.csr,
        certificate=a.certificate,
        signing_key=a.signing_key,
        signing_public=a.signing_public,
    )
    with pytest.raises(pki.PkiError, match="names site 'site-a', not 'site-b'"):
        pki.read_tls_identity(renamed)


# -- key files: modes, overwrite, secrets ---------------------------------------------------
def test_refuses_to_overwrite_unless_forced(tmp_path: Path, ca_dir: Path) -> None:
    ca_key = (ca_dir / "ca.key").read_bytes()
    with pytest.raises(pki.PkiError, match="refusing to overwrite existing .*ca.key"):
        pki.init_ca(ca_dir)
    assert (ca_dir / "ca.key").read_bytes() == ca_key
    pki.init_ca(ca_dir, force=True)
    assert (ca_dir / "ca.key").read_bytes() != ca_key and mode(ca_dir / "ca.key") == 0o600

    files = pki.request_site(tmp_path / "s", "site-a")
    before = {p: p.read_bytes() for p in (files.key, files.signing_key, files.csr)}
    with pytest.raises(pki.PkiError, match="refusing to overwrite"):
        pki.request_site(tmp_path / "s", "site-a")
    assert {p: p.read_bytes() for p in before} == before
    pki.sign_request(ca_dir, files.csr)
    with pytest.raises(pki.PkiError, match="refusing to overwrite .*site-a.crt"):
        pki.sign_request(ca_dir, files.csr)
    pki.sign_request(ca_dir, files.csr, force=True)
    again = pki.request_site(tmp_path / "s", "site-a", force=True)
    assert mode(again.key) == 0o600 and mode(again.signing_key) == 0o600
    assert again.key.read_bytes() != before[files.key]
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "site-a.crt",
        "site-a.csr",
        "site-a.key",
        "site-a.signing.key",
        "site-a.signing.pub",
    ]  # no temporary files left behind

    # issue_site checks every output first: an existing certificate stops it before any key.
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "site-b.crt").write_text("old")
    with pytest.raises(pki.PkiError, match="refusing to overwrite .*site-b.crt"):
        pki.issue_site(ca_dir, "site-b", tmp_path / "t")
    assert [p.name for p in (tmp_path / "t").iterdir()] == ["site-b.crt"]


def test_refuses_a_symlink_in_place_of_a_key(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "site-a.key").symlink_to(target)
    with pytest.raises(pki.PkiError, match="refusing to overwrite"):
        pki.request_site(tmp_path / "s", "site-a")
    assert not target.exists()


def test_private_keys_readable_by_others_are_refused(tmp_path: Path, ca_dir: Path) -> None:
    files = pki.issue_site(ca_dir, "site-a", tmp_path)
    os.chmod(files.signing_key, 0o644)
    with pytest.raises(pki.PkiError, match="chmod 600"):
        pki.load_signing_key(files.signing_key)
    os.chmod(files.key, 0o640)
    with pytest.raises(pki.PkiError, match="accessible by group or others"):
        pki.read_tls_identity(files)
    os.chmod(ca_dir / "ca.key", 0o604)
    with pytest.raises(pki.PkiError, match="CA key .* accessible"):
        pki.sign_request(ca_dir, files.csr, out=tmp_path / "x.crt")


def test_secrets_stay_out_of_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.signing.key"
    secret_text = "zz" + "ab" * 31  # 64 characters, not hex
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, secret_text.encode())
    os.close(fd)
    with pytest.raises(pki.PkiError) as info:
        pki.load_signing_key(bad)
    assert "64 hex digits" in str(info.value) and secret_text not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__

    key = tmp_path / "bad.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n")
    os.close(fd)
    files = pki.SiteFiles.in_directory(tmp_path, "bad")
    with pytest.raises(pki.PkiError, match="not an unencrypted PEM private key") as info:
        pki.read_tls_identity(files)
    assert "c2VjcmV0" not in str(info.value)


# -- the CA's checks on requests ------------------------------------------------------------
def _write_csr(path: Path, csr: x509.CertificateSigningRequest) -> Path:
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return path


def test_sign_refuses_tampered_csr(tmp_path: Path, ca_dir: Path) -> None:
    files = pki.request_site(tmp_path, "site-a")
    der = x509.load_pem_x509_csr(files.csr.read_bytes()).public_bytes(DER)
    assert der.count(b"site-a") == 2  # CN and SAN
    forged = tmp_path / "forged.csr"
    forged.write_bytes(der.replace(b"site-a", b"site-b"))  # same lengths, new name
    with pytest.raises(pki.PkiError, match="signature does not verify"):
        pki.sign_request(ca_dir, forged)
    assert not (tmp_path / "site-b.crt").exists()
    flipped = bytearray(der)
    flipped[-1] ^= 0x01  # the last byte of the ECDSA signature
    (tmp_path / "flipped.csr").write_bytes(bytes(flipped))
    with pytest.raises(pki.PkiError, match="signature does not verify"):
        pki.sign_request(ca_dir, tmp_path / "flipped.csr")
    (tmp_path / "junk.csr").write_bytes(b"not a csr")
    with pytest.raises(pki.PkiError, match="not a certificate signing request"):
        pki.sign_request(ca_dir, tmp_path / "junk.csr")


@pytest.mark.parametrize(
    ("cn", "sans", "message"),
    [
        ("site-a", [x509.DNSName("site-b")], "DNS:site-b does not equal its common name site-a"),
        ("site-a", None, "exactly one subjectAltName"),
        ("site-a", [x509.DNSName("site-a"), x509.DNSName("site-b")], "exactly one"),
        ("site-a", [x509.DNSName("site-a"), x509.DNSName("site-a")], "exactly one"),
        ("site-a", [x509.UniformResourceIdentifier("spiffe://x/site-a")], "exactly one"),
        ("Site_A", [x509.DNSName("Site_A")], "invalid site name"),
        ("Test Federation CA", [x509.DNSName("Test Federation CA")], "invalid site name"),
    ],
)
def test_sign_refuses_bad_names(
    tmp_path: Path, ca_dir: Path, cn: str, sans: list | None, message: str
) -> None:
    csr = _write_csr(tmp_path / "req.csr", make_csr(cn, sans))
    with pytest.raises(pki.PkiError, match=message):
        pki.sign_request(ca_dir, csr)
    assert not list(tmp_path.glob("*.crt"))


def test_sign_refuses_weak_or_foreign_keys(tmp_path: Path, ca_dir: Path) -> None:
    k1 = ec.generate_private_key(ec.SECP256K1())
    csr = _write_csr(tmp_path / "k1.csr", make_csr("site-a", [x509.DNSName("site-a")], k1))
    with pytest.raises(pki.PkiError, match="P-256 or P-384"):
        pki.sign_request(ca_dir, csr)
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    csr = _write_csr(tmp_path / "ca.csr", make_csr("site-a", [x509.DNSName("site-a")], ca_key))
    with pytest.raises(pki.PkiError, match="CA's own key"):
        pki.sign_request(ca_dir, csr)


def test_site_certificate_never_outlives_the_ca(tmp_path: Path) -> None:
    pki.init_ca(tmp_path / "ca", days=2)
    files = pki.issue_site(tmp_path / "ca", "site-a", tmp_path, days=365)
    ca = load_cert(tmp_path / "ca" / "ca.crt")
    assert load_cert(files.certificate).not_valid_after_utc == ca.not_valid_after_utc


# -- fingerprints ---------------------------------------------------------------------------
def test_fingerprint_is_sha256_of_der(tmp_path: Path, ca_dir: Path) -> None:
    files = pki.issue_site(ca_dir, "site-a", tmp_path)
    pem = files.certificate.read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(DER)
    expected = "sha256:" + hashlib.sha256(der).hexdigest()
    for source in (files.certificate, str(files.certificate), pem, pem.decode(), der):
        assert pki.certificate_fingerprint(source) == expected
    assert pki.describe_certificate(files.certificate)["fingerprint"] == expected
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed; the DER hash was checked")
    out = subprocess.run(
        [openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", str(files.certificate)],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    assert out.strip().split("=", 1)[1].replace(":", "").lower() == expected[len("sha256:") :]


def test_certificate_site_name_needs_one_dns_san(ca_dir: Path) -> None:
    with pytest.raises(pki.PkiError, match="exactly one subjectAltName"):
        pki.certificate_site_name(ca_dir / "ca.crt")
    with pytest.raises(pki.PkiError, match="not an X.509 certificate"):
        pki.certificate_fingerprint(b"garbage")


# -- the command line -----------------------------------------------------------------------
def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="blindsum")
    sub = parser.add_subparsers(dest="command", required=True)
    pki_cli.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca, site = tmp_path / "ca", tmp_path / "site"
    assert run_cli(["pki", "init", str(ca), "--name", "Demo CA", "--days", "20"]) == 0
    out = capsys.readouterr().out
    assert "ca.key" in out and "sha256:" in out

    assert run_cli(["pki", "request", "--name", "clinic-3", str(site)]) == 0
    out = capsys.readouterr().out
    seed = (site / "clinic-3.signing.key").read_text().strip()
    assert "clinic-3.csr" in out and (site / "clinic-3.signing.pub").read_text().strip() in out
    assert seed not in out and "PRIVATE KEY" not in out

    assert run_cli(["pki", "sign", "--ca", str(ca), str(site / "clinic-3.csr")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    cert = site / "clinic-3.crt"
    assert out[-1] == pki.certificate_fingerprint(cert)

    assert run_cli(["pki", "show", str(cert), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["san"] == ["DNS:clinic-3"] and info["common_name"] == "clinic-3"
    assert info["issuer"] == "CN=Demo CA" and info["ekus"] == ["serverAuth", "clientAuth"]
    assert info["is_ca"] is False and info["fingerprint"] == out[-1]
    assert dt.datetime.fromisoformat(info["not_after"]) > dt.datetime.now(dt.UTC)

    assert run_cli(["pki", "show", str(cert)]) == 0
    text = capsys.readouterr().out
    assert "DNS:clinic-3" in text and "serverAuth, clientAuth" in text and "CN=Demo CA" in text

    out_dir = tmp_path / "local"
    argv = ["pki", "issue", "--name", "lab-9", "--ca", str(ca), "--out", str(out_dir)]
    assert run_cli(argv) == 0
    fingerprint = capsys.readouterr().out.strip().splitlines()[-1]
    assert fingerprint == pki.certificate_fingerprint(out_dir / "lab-9.crt")
    assert mode(out_dir / "lab-9.key") == 0o600


def test_cli_errors_are_one_line_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca"
    assert run_cli(["pki", "init", str(ca)]) == 0
    capsys.readouterr()
    cases = [
        ["pki", "init", str(ca)],
        ["pki", "request", "--name=-bad", str(tmp_path / "s")],
        ["pki", "issue", "--name", "UPPER", "--ca", str(ca)],
        ["pki", "sign", "--ca", str(ca), str(tmp_path / "missing.csr")],
        ["pki", "sign", "--ca", str(tmp_path / "no-ca"), str(tmp_path / "missing.csr")],
        ["pki", "show", str(ca / "ca.key")],
    ]
    for argv in cases:
        assert run_cli(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("blindsum pki: error: "), argv
        assert "PRIVATE KEY" not in captured.err
    with pytest.raises(SystemExit) as info:
        run_cli(["pki", "init", str(tmp_path / "x"), "--days", "0"])
    assert info.value.code == 2


# -- one real mutual-TLS connection over gRPC -----------------------------------------------
class RecordingHealth(health.HealthServicer):
    """The standard health service, remembering each caller's auth context."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[dict[str, list[bytes]]] = []

    def Check(self, request, context):  # noqa: N802 - gRPC method name
        self.peers.append(dict(context.auth_context()))
        return super().Check(request, context)


def test_mutual_tls_over_grpc(tmp_path: Path, ca_dir: Path) -> None:
    aggregator = pki.issue_site(ca_dir, "aggregator", tmp_path / "agg")
    site = pki.issue_site(ca_dir, "hospital-a", tmp_path / "site")
    pki.init_ca(tmp_path / "rogue-ca", name="Test Federation CA")  # same name, other key
    rogue = pki.issue_site(tmp_path / "rogue-ca", "hospital-a", tmp_path / "rogue")
    ca_pem = pki.read_ca_certificate(ca_dir)
    rogue_ca_pem = pki.read_ca_certificate(tmp_path / "rogue-ca")

    servicer = RecordingHealth()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    try:
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        credentials = grpc.ssl_server_credentials(
            [pki.read_tls_identity(aggregator)],
            root_certificates=ca_pem,
            require_client_auth=True,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        assert port > 0
        server.start()

        def check(identity: tuple[bytes, bytes] | None, roots: bytes, name: str = "aggregator"):
            key, cert = identity or (None, None)
            creds = grpc.ssl_channel_credentials(
                root_certificates=roots, private_key=key, certificate_chain=cert
            )
            options = [("grpc.ssl_target_name_override", name), ("grpc.enable_http_proxy", 0)]
            with grpc.secure_channel(f"127.0.0.1:{port}", creds, options=options) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)

        def refused(identity, roots: bytes, name: str = "aggregator") -> None:
            with pytest.raises(grpc.RpcError) as info:
                check(identity, roots, name)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value

        # A site with a certificate from the federation CA gets through, and the
        # server sees its site name in the peer's subjectAltName.
        reply = check(pki.read_tls_identity(site), ca_pem)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert len(servicer.peers) == 1
        peer = servicer.peers[0]
        assert peer["transport_security_type"] == [b"ssl"]
        assert peer["x509_subject_alternative_name"] == [b"hospital-a"]
        assert peer["x509_common_name"] == [b"hospital-a"]
        assert pki.certificate_site_name(peer["x509_pem_cert"][0]) == "hospital-a"

        # Handshake failures reach the client as UNAVAILABLE; no handler runs.
        refused(pki.read_tls_identity(rogue), ca_pem)  # client cert from a rogue CA
        refused(None, ca_pem)  # no client certificate at all
        refused(pki.read_tls_identity(site), rogue_ca_pem)  # client does not trust the server
        refused(pki.read_tls_identity(site), ca_pem, name="bank-b")  # wrong server name
        assert len(servicer.peers) == 1
    finally:
        server.stop(0)
