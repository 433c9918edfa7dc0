"""Federation PKI: a small CA, site TLS identities for mutual TLS, protocol signing keys.

One federation has one CA (`init_ca`). Each site makes its own keys and a
certificate signing request on its own machine (`request_site`); the CA checks
the request and issues a certificate (`sign_request`). `issue_site` does both
in one step for local use (demos, tests). The gRPC runtime reads a site's TLS
identity with `read_tls_identity` and binds a peer's identity to the single DNS
subjectAltName of its certificate (`certificate_site_name`), i.e. the
`x509_subject_alternative_name` that `context.auth_context()` exposes.

Files (all PEM unless noted):

- CA directory: ``ca.key`` (ECDSA P-384, PKCS#8, mode 0600), ``ca.crt``
  (self-signed, BasicConstraints CA=true pathlen=0, KeyUsage keyCertSign+cRLSign,
  ecdsa-with-SHA384).
- Site directory: ``SITE.key`` (ECDSA P-256 TLS key, 0600), ``SITE.csr``
  (CN=SITE, SAN DNS:SITE), ``SITE.crt`` (issued by the CA: SAN DNS:SITE,
  EKU serverAuth+clientAuth, CA=false, KeyUsage digitalSignature, AKI/SKI,
  random serial), ``SITE.signing.key`` (the 32-byte Ed25519 protocol signing
  seed as one line of hex, 0600) and ``SITE.signing.pub`` (its 32-byte public
  key, hex).

`cryptography` is used for X.509 only; the Ed25519 protocol key is a
`secagg.crypto.SigningKey`. Private keys are created with mode 0600, never
overwritten unless ``force=True``, and never appear in reprs or error texts;
loading a private key refuses a file that group or others can read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from secagg.crypto import SigningKey

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "MAX_DAYS",
    "CaFiles",
    "PkiError",
    "SiteFiles",
    "certificate_fingerprint",
    "certificate_site_name",
    "describe_certificate",
    "init_ca",
    "issue_site",
    "load_signing_key",
    "load_signing_public",
    "read_ca_certificate",
    "read_tls_identity",
    "request_site",
    "sign_request",
    "validate_site_name",
]

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.crt"
MAX_DAYS = 3650  # validity periods are 1..MAX_DAYS days
_CLOCK_SKEW = dt.timedelta(minutes=5)  # certificates are back-dated by this much
_MAX_FILE_BYTES = 1 << 20  # no PKI file is anywhere near this large
_SEED_BYTES = 32
_SITE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_SITE_NAME_RULE = (
    "a site name is 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
)
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
}


class PkiError(ValueError):
    """A PKI operation was refused; the message names the file or rule (never a secret)."""


@dataclass(frozen=True)
class CaFiles:
    """Where a federation CA keeps its key and certificate."""

    key: Path
    certificate: Path

    @classmethod
    def in_directory(cls, directory: str | os.PathLike[str]) -> CaFiles:
        d = Path(directory)
        return cls(key=d / CA_KEY_FILE, certificate=d / CA_CERT_FILE)


@dataclass(frozen=True)
class SiteFiles:
    """Where a site keeps its TLS key, CSR, certificate and protocol signing key pair.

    `certificate` is where the site's certificate lives once the CA has issued it
    (after `request_site` alone it does not exist yet).
    """

    name: str
    key: Path
    csr: Path
    certificate: Path
    signing_key: Path
    signing_public: Path

    @classmethod
    def in_directory(cls, directory: str | os.PathLike[str], name: str) -> SiteFiles:
        validate_site_name(name)
        d = Path(directory)
        return cls(
            name=name,
            key=d / f"{name}.key",
            csr=d / f"{name}.csr",
            certificate=d / f"{name}.crt",
            signing_key=d / f"{name}.signing.key",
            signing_public=d / f"{name}.signing.pub",
        )


# ---------------------------------------------------------------------------
# Validation


def validate_site_name(name: object) -> str:
    """Return `name` if it is a valid site name, else raise PkiError naming the rule."""
    if not isinstance(name, str):
        raise PkiError(f"site name must be a string; {_SITE_NAME_RULE}")
    if not _SITE_NAME.fullmatch(name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise PkiError(f"invalid site name {shown!r}: {_SITE_NAME_RULE}")
    return name


def _check_days(days: object) -> int:
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise PkiError(f"days must be an integer in 1..{MAX_DAYS}, got {days!r}")
    return days


def _check_ca_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= 64
        or not name.isprintable()
        or name != name.strip()
    ):
        raise PkiError(
            "CA name must be 1-64 printable characters without leading or trailing spaces"
        )
    return name


# ---------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class _Output:
    path: Path
    data: bytes
    secret: bool  # 0600 if True, else 0644


def _ensure_directory(directory: str | os.PathLike[str]) -> Path:
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise PkiError(f"{d} exists and is not a directory")
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise PkiError(f"cannot create directory {d}: {exc.strerror}") from None
    return d


def _refuse_existing(paths: list[Path]) -> None:
    for p in paths:
        if p.exists() or p.is_symlink():
            raise PkiError(f"refusing to overwrite existing {p} (use --force / force=True)")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (it must not exist: O_EXCL, no symlink following) with `mode`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have removed bits; set exactly `mode`
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _write_outputs(outputs: list[_Output], *, force: bool) -> None:
    """Write every output or (without force) none: existing files are refused first."""
    if not force:
        _refuse_existing([o.path for o in outputs])
    written: list[Path] = []
    try:
        for o in outputs:
            mode = 0o600 if o.secret else 0o644
            if force:
                tmp = o.path.with_name(f".{o.path.name}.{secrets.token_hex(8)}.tmp")
                _write_new(tmp, o.data, mode)
                try:
                    os.replace(tmp, o.path)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
            else:
                _write_new(o.path, o.data, mode)
                written.append(o.path)
    except FileExistsError as exc:  # lost a race with another writer
        for p in written:
            p.unlink(missing_ok=True)
        raise PkiError(f"refusing to overwrite existing {exc.filename}") from None
    except OSError as exc:
        for p in written:
            p.unlink(missing_ok=True)
        raise PkiError(f"cannot write {exc.filename or 'file'}: {exc.strerror}") from None


def _read(path: str | os.PathLike[str], what: str, *, secret: bool = False) -> bytes:
    p = Path(path)
    try:
        st = p.stat()
        if not p.is_file():
            raise PkiError(f"{what} {p} is not a regular file")
        if st.st_size > _MAX_FILE_BYTES:
            raise PkiError(f"{what} {p} is too large to be a {what}")
        if secret and os.name == "posix" and st.st_mode & 0o077:
            raise PkiError(
                f"{what} {p} is accessible by group or others "
                f"(mode {st.st_mode & 0o777:04o}); run: chmod 600 {p}"
            )
        return p.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{what} not found: {p}") from None
    except OSError as exc:
        raise PkiError(f"cannot read {what} {p}: {exc.strerror}") from None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_private_key(path: Path, what: str) -> ec.EllipticCurvePrivateKey:
    data = _read(path, what, secret=True)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise PkiError(f"{what} {path} is not an unencrypted PEM private key") from None
    finally:
        del data
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{what} {path} is not an ECDSA key")
    return key


def _same_public_key(a, b) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


def _hash_for(key: ec.EllipticCurvePrivateKey) -> hashes.HashAlgorithm:
    size = key.curve.key_size
    if size <= 256:
        return hashes.SHA256()
    if size <= 384:
        return hashes.SHA384()
    return hashes.SHA512()


# ---------------------------------------------------------------------------
# Certificates: loading and inspecting


def _parse_certificate(data: bytes, source: str) -> x509.Certificate:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise PkiError(f"{source} is not an X.509 certificate (PEM or DER)") from None


def _certificate(
    source: bytes | str | os.PathLike[str] | x509.Certificate,
) -> x509.Certificate:
    """A certificate from PEM/DER bytes, PEM text, a path, or a Certificate."""
    if isinstance(source, x509.Certificate):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        return _parse_certificate(bytes(source), "the given data")
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        return _parse_certificate(source.encode("ascii", "replace"), "the given text")
    if isinstance(source, str | os.PathLike):
        return _parse_certificate(_read(source, "certificate"), str(source))
    raise PkiError("expected a certificate as PEM/DER bytes, PEM text or a path")


def certificate_fingerprint(pem_or_path: bytes | str | os.PathLike[str]) -> str:
    """ "sha256:" + lowercase hex of the SHA-256 of the certificate's DER encoding.

    Equal to `openssl x509 -noout -fingerprint -sha256` without the colons.
    """
    der = _certificate(pem_or_path).public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _san_entries(cert: x509.Certificate | x509.CertificateSigningRequest) -> list:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def certificate_site_name(pem: bytes | str | os.PathLike[str]) -> str:
    """The site name of a site certificate: its single DNS subjectAltName (validated)."""
    cert = _certificate(pem)
    entries = _san_entries(cert)
    if len(entries) != 1 or not isinstance(entries[0], x509.DNSName):
        raise PkiError(
            f"a site certificate must have exactly one subjectAltName, a DNS name; "
            f"this one has {len(entries)} entries"
        )
    return validate_site_name(entries[0].value)


def _common_names(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _general_name(entry: x509.GeneralName) -> str:
    prefix = {
        x509.DNSName: "DNS",
        x509.IPAddress: "IP",
        x509.UniformResourceIdentifier: "URI",
        x509.RFC822Name: "email",
    }.get(type(entry))
    if prefix is None:
        return f"{type(entry).__name__}:{entry.value}"
    return f"{prefix}:{entry.value}"


def describe_certificate(pem_or_path: bytes | str | os.PathLike[str]) -> dict:
    """Subject, SAN, issuer, validity, EKUs, fingerprint ... as a JSON-ready dict."""
    cert = _certificate(pem_or_path)
    try:
        ekus = [
            _EKU_NAMES.get(oid, oid.dotted_string)
            for oid in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ]
    except x509.ExtensionNotFound:
        ekus = []
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca, path_length = bc.ca, bc.path_length
    except x509.ExtensionNotFound:
        is_ca, path_length = False, None
    public = cert.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        key_type = f"ECDSA {public.curve.name}"
    elif isinstance(public, rsa.RSAPublicKey):
        key_type = f"RSA {public.key_size}"
    else:
        key_type = type(public).__name__
    return {
        "subject": cert.subject.rfc4514_string(),
        "common_name": (_common_names(cert.subject) or [None])[0],
        "san": [_general_name(e) for e in _san_entries(cert)],
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "ekus": ekus,
        "is_ca": is_ca,
        "path_length": path_length,
        "serial": f"{cert.serial_number:x}",
        "public_key": key_type,
        "fingerprint": certificate_fingerprint(cert.public_bytes(serialization.Encoding.DER)),
    }


def read_ca_certificate(path: str | os.PathLike[str]) -> bytes:
    """PEM bytes of a CA certificate (a file, or a CA directory holding ca.crt).

    For `root_certificates=` of gRPC credentials; refuses a non-CA certificate.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CA_CERT_FILE
    data = _read(p, "CA certificate")
    cert = _parse_certificate(data, str(p))
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise PkiError(f"{p} is not a CA certificate (BasicConstraints CA=true missing)")
    return cert.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------------------
# The CA


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def init_ca(
    directory: str | os.PathLike[str],
    *,
    name: str = "blindsum federation CA",
    days: int = 365,
    force: bool = False,
) -> CaFiles:
    """Create a federation CA in `directory`: ca.key (P-384, 0600) and self-signed ca.crt."""
    _check_ca_name(name)
    _check_days(days)
    files = CaFiles.in_directory(_ensure_directory(directory))
    if not force:
        _refuse_existing([files.key, files.certificate])
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA384())
    )
    _write_outputs(
        [
            _Output(files.key, _key_pem(key), secret=True),
            _Output(files.certificate, cert.public_bytes(serialization.Encoding.PEM), False),
        ],
        force=force,
    )
    return files


@dataclass(frozen=True)
class _Ca:
    files: CaFiles
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def __repr__(self) -> str:  # never show the key object
        return f"_Ca(files={self.files!r})"


def _load_ca(ca_directory: str | os.PathLike[str]) -> _Ca:
    d = Path(ca_directory)
    if not d.is_dir():
        raise PkiError(f"CA directory not found: {d}")
    files = CaFiles.in_directory(d)
    cert = _parse_certificate(_read(files.certificate, "CA certificate"), str(files.certificate))
    key = _load_private_key(files.key, "CA key")
    if not _same_public_key(key.public_key(), cert.public_key()):
        raise PkiError(f"CA key {files.key} does not match CA certificate {files.certificate}")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise PkiError(f"{files.certificate} is not a CA certificate")
    if cert.not_valid_after_utc <= _now():
        raise PkiError(
            f"CA certificate {files.certificate} expired on "
            f"{cert.not_valid_after_utc.isoformat()}; create a new CA"
        )
    return _Ca(files, key, cert)


def _load_csr(csr_path: str | os.PathLike[str]) -> x509.CertificateSigningRequest:
    data = _read(csr_path, "certificate signing request")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError:
        raise PkiError(f"{csr_path} is not a certificate signing request (PEM or DER)") from None


def _checked_request(csr: x509.CertificateSigningRequest, source: str) -> str:
    """The site name of a well-formed, correctly signed site CSR, else PkiError."""
    try:
        valid = csr.is_signature_valid
    except (ValueError, InvalidSignature):
        valid = False
    if not valid:
        raise PkiError(f"{source}: the CSR signature does not verify (tampered or corrupt)")
    cns = _common_names(csr.subject)
    if len(cns) != 1:
        raise PkiError(f"{source}: the CSR subject must have exactly one common name (CN)")
    cn = cns[0]
    validate_site_name(cn)
    try:
        entries = _san_entries(csr)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        raise PkiError(f"{source}: the CSR has malformed extensions") from None
    if len(entries) != 1 or not isinstance(entries[0], x509.DNSName):
        raise PkiError(
            f"{source}: the CSR must have exactly one subjectAltName, DNS:{cn} "
            f"(found {len(entries)} entries)"
        )
    if entries[0].value != cn:
        raise PkiError(
            f"{source}: the CSR's subjectAltName DNS:{entries[0].value} does not equal "
            f"its common name {cn}"
        )
    public = csr.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        if not isinstance(public.curve, ec.SECP256R1 | ec.SECP384R1):
            raise PkiError(f"{source}: the CSR key must be ECDSA P-256 or P-384")
    elif isinstance(public, rsa.RSAPublicKey):
        if public.key_size < 2048:
            raise PkiError(f"{source}: the CSR's RSA key is shorter than 2048 bits")
    else:
        raise PkiError(f"{source}: the CSR key must be ECDSA P-256/P-384 or RSA >= 2048")
    return cn


def _issue(
    ca: _Ca,
    csr: x509.CertificateSigningRequest,
    source: str,
    out: Path,
    *,
    days: int,
    force: bool,
) -> Path:
    site = _checked_request(csr, source)
    if site in _common_names(ca.certificate.subject):
        raise PkiError(f"site name {site!r} equals the CA's common name; choose another")
    if _same_public_key(csr.public_key(), ca.key.public_key()):
        raise PkiError(f"{source}: the CSR uses the CA's own key")
    now = _now()
    not_after = min(now + dt.timedelta(days=days), ca.certificate.not_valid_after_utc)
    try:
        ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, site)]))
        .issuer_name(ca.certificate.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - _CLOCK_SKEW, ca.certificate.not_valid_before_utc))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(site)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(aki, critical=False)
        .sign(ca.key, _hash_for(ca.key))
    )
    if out.is_dir():
        out = out / f"{site}.crt"
    _ensure_directory(out.parent)
    _write_outputs(
        [_Output(out, cert.public_bytes(serialization.Encoding.PEM), False)], force=force
    )
    return out


def sign_request(
    ca_directory: str | os.PathLike[str],
    csr_path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    days: int = 365,
    force: bool = False,
) -> Path:
    """Check a site's CSR and issue its certificate; return the certificate's path.

    The CSR must verify under its own key, have exactly one CN that is a valid
    site name and exactly one subjectAltName, DNS:<that name>. Only the site name
    and the public key are taken from the CSR; everything else is set here. The
    certificate goes to `out` (a file, or a directory for SITE.crt), by default
    SITE.crt next to the CSR. Its validity ends after `days` or when the CA
    expires, whichever is first.
    """
    _check_days(days)
    ca = _load_ca(ca_directory)
    csr = _load_csr(csr_path)
    site = _checked_request(csr, str(csr_path))
    target = Path(out) if out is not None else Path(csr_path).with_name(f"{site}.crt")
    return _issue(ca, csr, str(csr_path), target, days=days, force=force)


# ---------------------------------------------------------------------------
# Sites


def _site_outputs(files: SiteFiles) -> tuple[list[_Output], x509.CertificateSigningRequest]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, files.name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(files.name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    signing = SigningKey.generate()
    try:
        seed_line = (signing.seed_bytes().hex() + "\n").encode("ascii")
        public_line = (signing.public.hex() + "\n").encode("ascii")
    finally:
        signing.erase()
    outputs = [
        _Output(files.key, _key_pem(key), secret=True),
        _Output(files.csr, csr.public_bytes(serialization.Encoding.PEM), secret=False),
        _Output(files.signing_key, seed_line, secret=True),
        _Output(files.signing_public, public_line, secret=False),
    ]
    return outputs, csr


def request_site(directory: str | os.PathLike[str], name: str, *, force: bool = False) -> SiteFiles:
    """On a site's machine: make its TLS key, CSR and protocol signing key pair in `directory`.

    Writes SITE.key (0600), SITE.csr, SITE.signing.key (0600), SITE.signing.pub.
    Only SITE.csr (and SITE.signing.pub, for the roster) leave the machine.
    """
    validate_site_name(name)
    files = SiteFiles.in_directory(_ensure_directory(directory), name)
    if not force:
        _refuse_existing([files.key, files.csr, files.signing_key, files.signing_public])
    outputs, _ = _site_outputs(files)
    _write_outputs(outputs, force=force)
    return files


def issue_site(
    ca_directory: str | os.PathLike[str],
    name: str,
    out_directory: str | os.PathLike[str],
    *,
    days: int = 365,
    force: bool = False,
) -> SiteFiles:
    """`request_site` then `sign_request` in one step (local use: demos, tests)."""
    validate_site_name(name)
    _check_days(days)
    ca = _load_ca(ca_directory)
    files = SiteFiles.in_directory(_ensure_directory(out_directory), name)
    if not force:
        _refuse_existing(
            [files.key, files.csr, files.certificate, files.signing_key, files.signing_public]
        )
    outputs, csr = _site_outputs(files)
    _write_outputs(outputs, force=force)
    try:
        _issue(ca, csr, str(files.csr), files.certificate, days=days, force=force)
    except BaseException:
        if not force:  # leave nothing half-made behind
            for o in outputs:
                o.path.unlink(missing_ok=True)
        raise
    return files


def read_tls_identity(site_files: SiteFiles) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) of a site, for gRPC ssl credentials.

    Checks that the key is private to its owner (no group/other access), that
    the certificate is for this key and names this site.
    """
    key = _load_private_key(site_files.key, "TLS key")
    if not site_files.certificate.exists():
        raise PkiError(
            f"no certificate at {site_files.certificate}: send {site_files.csr.name} to the "
            f"federation CA (blindsum pki sign) and put the returned certificate there"
        )
    cert_pem = _read(site_files.certificate, "certificate")
    cert = _parse_certificate(cert_pem, str(site_files.certificate))
    if not _same_public_key(key.public_key(), cert.public_key()):
        raise PkiError(f"certificate {site_files.certificate} is not for the key {site_files.key}")
    if certificate_site_name(cert) != site_files.name:
        raise PkiError(
            f"certificate {site_files.certificate} names site "
            f"{certificate_site_name(cert)!r}, not {site_files.name!r}"
        )
    return _key_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def _read_hex32(path: str | os.PathLike[str], what: str, *, secret: bool) -> bytearray:
    data = bytearray(_read(path, what, secret=secret))
    try:
        text = data.strip()
        if len(text) != 2 * _SEED_BYTES:
            raise PkiError(f"{what} {path} must be one line of 64 hex digits")
        try:
            return bytearray(bytes.fromhex(text.decode("ascii")))
        except (ValueError, UnicodeDecodeError):
            raise PkiError(f"{what} {path} must be one line of 64 hex digits") from None
    finally:
        data[:] = bytes(len(data))


def load_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """The site's Ed25519 protocol signing key from SITE.signing.key (must be mode 0600)."""
    seed = _read_hex32(path, "signing key", secret=True)
    try:
        return SigningKey.from_seed(bytes(seed))
    finally:
        seed[:] = bytes(len(seed))


def load_signing_public(path: str | os.PathLike[str]) -> bytes:
    """The 32 raw bytes of an Ed25519 public key from SITE.signing.pub."""
    return bytes(_read_hex32(path, "signing public key", secret=False))
