"""`blindsum pki ...`: create a federation CA, site keys and requests, issue and show certificates."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from node import pki


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= pki.MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text} is outside the allowed range 1..{pki.MAX_DAYS}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `pki` and its sub-commands on the dispatcher's subparsers."""
    pki_parser = subparsers.add_parser(
        "pki", help="federation CA, site keys, certificate requests and certificates"
    )
    sub = pki_parser.add_subparsers(dest="pki_command", required=True)
    force_help = "overwrite existing files (private keys included)"

    p = sub.add_parser("init", help="create a federation CA (ca.key, ca.crt) in DIR")
    p.add_argument("directory", metavar="DIR", type=Path)
    p.add_argument("--name", default="blindsum federation CA", help="the CA's common name")
    p.add_argument("--days", type=_days, default=365, help=f"validity, 1..{pki.MAX_DAYS} days")
    p.add_argument("--force", action="store_true", help=force_help)
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser(
        "request", help="on a site: make its TLS key, CSR and protocol signing key in DIR"
    )
    p.add_argument("directory", metavar="DIR", type=Path)
    p.add_argument("--name", required=True, metavar="SITE", help="the site name")
    p.add_argument("--force", action="store_true", help=force_help)
    p.set_defaults(func=_cmd_request)

    p = sub.add_parser("sign", help="on the CA: check a site's CSR and issue its certificate")
    p.add_argument("csr", metavar="CSR", type=Path)
    p.add_argument("--ca", required=True, metavar="CA_DIR", type=Path)
    p.add_argument("--out", metavar="CERT", type=Path, help="default: SITE.crt next to the CSR")
    p.add_argument("--days", type=_days, default=365, help=f"validity, 1..{pki.MAX_DAYS} days")
    p.add_argument("--force", action="store_true", help="overwrite an existing certificate")
    p.set_defaults(func=_cmd_sign)

    p = sub.add_parser("issue", help="request + sign in one step, for local use")
    p.add_argument("--name", required=True, metavar="SITE", help="the site name")
    p.add_argument("--ca", required=True, metavar="CA_DIR", type=Path)
    p.add_argument("--out", metavar="DIR", type=Path, default=Path("."), help="default: .")
    p.add_argument("--days", type=_days, default=365, help=f"validity, 1..{pki.MAX_DAYS} days")
    p.add_argument("--force", action="store_true", help=force_help)
    p.set_defaults(func=_cmd_issue)

    p = sub.add_parser("show", help="subject, SAN, issuer, validity, EKUs, fingerprint")
    p.add_argument("certificate", metavar="CERT", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_show)


# -- commands ------------------------------------------------------------------------------
def _fail(message: str) -> int:
    print(f"blindsum pki: error: {message}", file=sys.stderr)
    return 2


def _cmd_init(args: argparse.Namespace) -> int:
    try:
        files = pki.init_ca(args.directory, name=args.name, days=args.days, force=args.force)
        info = pki.describe_certificate(files.certificate)
    except pki.PkiError as exc:
        return _fail(str(exc))
    print(f"CA key:         {files.key} (mode 0600; keep it offline, never copy it)")
    print(f"CA certificate: {files.certificate} (give a copy to every site)")
    print(f"valid until:    {info['not_after']}")
    print(f"fingerprint:    {info['fingerprint']}")
    return 0


def _cmd_request(args: argparse.Namespace) -> int:
    try:
        files = pki.request_site(args.directory, args.name, force=args.force)
        public = pki.load_signing_public(files.signing_public).hex()
    except pki.PkiError as exc:
        return _fail(str(exc))
    print(f"TLS key:            {files.key} (mode 0600; stays here)")
    print(f"signing key:        {files.signing_key} (mode 0600; stays here)")
    print(f"request:            {files.csr} (send to the federation CA)")
    print(f"signing public key: {files.signing_public} ({public})")
    print(
        f"next: the CA runs `blindsum pki sign --ca CA_DIR {files.csr.name}`; "
        f"put the returned {files.certificate.name} in {files.certificate.parent}"
    )
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    try:
        path = pki.sign_request(args.ca, args.csr, out=args.out, days=args.days, force=args.force)
        info = pki.describe_certificate(path)
    except pki.PkiError as exc:
        return _fail(str(exc))
    print(f"certificate: {path}")
    print(f"site:        {', '.join(info['san'])}")
    print(f"valid until: {info['not_after']}")
    print(info["fingerprint"])
    return 0


def _cmd_issue(args: argparse.Namespace) -> int:
    try:
        files = pki.issue_site(args.ca, args.name, args.out, days=args.days, force=args.force)
        fingerprint = pki.certificate_fingerprint(files.certificate)
    except pki.PkiError as exc:
        return _fail(str(exc))
    print(f"TLS key:            {files.key} (mode 0600)")
    print(f"certificate:        {files.certificate}")
    print(f"signing key:        {files.signing_key} (mode 0600)")
    print(f"signing public key: {files.signing_public}")
    print(fingerprint)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    try:
        info = pki.describe_certificate(args.certificate)
    except pki.PkiError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(info, sort_keys=True))
        return 0
    rows = [
        ("subject", info["subject"]),
        ("subjectAltName", ", ".join(info["san"]) or "-"),
        ("issuer", info["issuer"]),
        ("not before", info["not_before"]),
        ("not after", info["not_after"]),
        ("extended key usage", ", ".join(info["ekus"]) or "-"),
        ("CA", "yes" if info["is_ca"] else "no"),
        ("serial", info["serial"]),
        ("public key", info["public_key"]),
        ("fingerprint", info["fingerprint"]),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
