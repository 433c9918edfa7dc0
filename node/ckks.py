"""The optional CKKS homomorphic path (TenSEAL), with committee key custody.

Participants DDG-encode exactly as on the masking path (`dp.codec.encode`), then
encrypt the centred integer vector (entries in [-2^(b-1), 2^(b-1))) under a CKKS
public key. The aggregator adds the ciphertexts as they stream in
(`CiphertextAccumulator`, public context only) and sends the encrypted sum to a
decryption committee. Every member decrypts, rounds to integers (failing closed
if any coordinate is not close to an integer), reduces mod 2^b and signs the
digest of the integer sum; the sum is released only when every member signed the
same digest (`agree_on_sum`). The released vector equals the masking path's
`sum(encoded) mod 2^b` bit for bit, and goes to the same `dp.codec.decode`.

Key custody (TenSEAL has no threshold decryption): the committee lead creates a
fresh CKKS key pair for the run, announces the public context signed with its
Ed25519 roster key (`PublicContextAnnouncement`), and sends the secret context to
every other member end to end (`seal_secret_context`: ephemeral X25519 with the
member's per-run X25519 key from its signed `MemberEnrolment`, AES-256-GCM,
Ed25519 signature of the lead). The aggregator relays those blobs and never holds
a secret key. All key-custody cryptography goes through `secagg.crypto`.

Parameters (`choose_parameters`, the rule and its justification in its docstring)
are derived from the number of contributors n and the bits b; configurations in
which the sum could leave the CKKS headroom or the decryption error could reach
1/2 are refused with `CkksParameterError`, naming the limit and what to change.

Trust: see `TRUST_MODEL` below (the masking path tolerates an actively malicious
aggregator; this path does not).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import tenseal as ts

from secagg import crypto
from secagg.errors import SecAggError
from secagg.processes import worker_pool

__all__ = [
    "DECRYPTION_TOLERANCE",
    "ERROR_TARGET",
    "SECURITY_LIMITS",
    "TRUST_MODEL",
    "CiphertextAccumulator",
    "CkksDecryptionRefused",
    "CkksError",
    "CkksParameterError",
    "CkksParameters",
    "CkksRoundResult",
    "CommitteeDisagreement",
    "CommitteeKeys",
    "CommitteeMember",
    "ContextAuthenticationError",
    "MemberEnrolment",
    "PublicContextAnnouncement",
    "SealedSecretContext",
    "SumAttestation",
    "UploadReceipt",
    "agree_on_sum",
    "check_parameters",
    "choose_parameters",
    "ciphertext_digest",
    "decrypt_sum",
    "encrypt_update",
    "encryption_pool",
    "enrol_member",
    "fresh_error_std",
    "open_secret_context",
    "sign_upload_receipt",
    "simulate_ckks_round",
    "sum_digest",
    "upload_digest",
    "verify_public_context",
    "verify_upload_receipts",
    "warm_up",
]

# ---------------------------------------------------------------------------
# Errors


class CkksError(Exception):
    """Base class of every CKKS-path error. Messages never contain secrets."""


class CkksParameterError(CkksError, ValueError):
    """No secure CKKS parameters give exact sums for this (n, b): the text names the limit."""


class ContextAuthenticationError(CkksError):
    """A signed announcement, enrolment, sealed context or receipt failed its checks."""


class CkksDecryptionRefused(CkksError):
    """Decryption failed closed (a coordinate not close to an integer, or out of range)."""


class CommitteeDisagreement(CkksError):
    """The committee did not all sign the same sum: nothing is released."""


# ---------------------------------------------------------------------------
# Parameters

# 128-bit classical security (HomomorphicEncryption.org standard, SEAL's defaults):
# the largest total log2 q for each ring degree N.
SECURITY_LIMITS: dict[int, int] = {4096: 109, 8192: 218, 16384: 438, 32768: 881}
PRIME_BITS = 60  # SEAL's largest NTT-friendly primes; every prime of the chain is 60 bits
MIN_SCALE_BITS = 25  # the floor of the issue / platform.md: error << 1/2 for any N here
ERROR_SIGMAS = 10.0  # tail bound: P(|Gaussian| > 10 sigma) ~ 1.5e-23 per coordinate
ERROR_SAFETY = 2.0  # multiplies the modelled per-coordinate error std-dev
ERROR_TARGET = 1.0 / 16  # the predicted bound on |decrypted - integer sum| must stay below this
DECRYPTION_TOLERANCE = 1.0 / 4  # decrypt_sum refuses if any coordinate is farther from an integer
HEADROOM_MARGIN_BITS = 1  # |sum| * scale must stay 2^1 below q_data / 2
_DOUBLE_MANTISSA = 53


@dataclass(frozen=True)
class CkksParameters:
    """CKKS parameters for exact sums of up to `max_clients` b-bit centred vectors."""

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]  # data primes, then the special (key-switching) prime
    scale_bits: int
    bits: int
    max_clients: int

    @property
    def slots(self) -> int:
        """Values per ciphertext (N/2)."""
        return self.poly_modulus_degree // 2

    @property
    def scale(self) -> float:
        return float(2**self.scale_bits)

    @property
    def data_modulus_bits(self) -> int:
        """A lower bound on log2 q_data: a p-bit data prime is > 2^(p-1)."""
        return sum(p - 1 for p in self.coeff_mod_bit_sizes[:-1])

    @property
    def sum_bits(self) -> float:
        """log2 of the largest |sum|: max_clients * 2^(b-1)."""
        return math.log2(self.max_clients) + self.bits - 1

    @property
    def headroom_bits(self) -> float:
        """Spare bits: log2(q_data) - scale_bits - 1 - log2(n 2^(b-1)) (must be >= the margin)."""
        return self.data_modulus_bits - self.scale_bits - 1 - self.sum_bits

    @property
    def error_bound(self) -> float:
        """Predicted bound on |decrypted sum - integer sum| for max_clients contributors."""
        return _error_bound(self.poly_modulus_degree, self.scale_bits, self.max_clients, self.bits)

    def chunks(self, length: int) -> int:
        """Ciphertexts per encrypted vector of `length` values."""
        return -(-length // self.slots)

    def ciphertext_bytes_per_value(self) -> int:
        """Approximate serialized bytes per value: 2 polynomials x N x data primes x 8 B / (N/2)."""
        return 32 * (len(self.coeff_mod_bit_sizes) - 1)

    def encoding(self) -> tuple[int, ...]:
        """The fields bound by signatures, as integers."""
        return (
            self.poly_modulus_degree,
            len(self.coeff_mod_bit_sizes),
            *self.coeff_mod_bit_sizes,
            self.scale_bits,
            self.bits,
            self.max_clients,
        )


def fresh_error_std(poly_modulus_degree: int) -> float:
    """Model of the std-dev of one coordinate's error of a fresh ciphertext, in scaled units.

    SEAL encrypts with the public key at the key level (data primes + special prime P)
    and then divides by P with rounding, so the encryption noise (~sigma_e sqrt(N) ...)
    is divided by P = 2^60 and what remains is the rounding: r0 + r1*s with r0, r1
    uniform in [-1/2, 1/2) (variance 1/12) and s uniform ternary (E[s_j^2] = 2/3),
    plus the 1/12 of rounding the encoded plaintext coefficients. A coefficient has
    variance (2 + 2N/3)/12; the real part of a slot is a sum of N coefficients times
    cosines: variance N/2 times that. N = 8192: 1365.6 (measured: 1367).
    """
    n = poly_modulus_degree
    return math.sqrt(n / 2 * (2 + 2 * n / 3) / 12)


def _error_bound(poly_modulus_degree: int, scale_bits: int, clients: int, bits: int) -> float:
    # n independent fresh errors add: std sqrt(n) * fresh; 10 sigmas, x2 for the model.
    noise = ERROR_SIGMAS * ERROR_SAFETY * math.sqrt(clients) * fresh_error_std(poly_modulus_degree)
    # Decoding runs in double precision: ~(log2 N + 2) roundings relative to |sum|.
    precision = (math.log2(poly_modulus_degree) + 2) * 2.0 ** (
        math.log2(clients) + bits - 1 - _DOUBLE_MANTISSA
    )
    return noise / 2.0**scale_bits + precision


def _refuse(message: str) -> CkksParameterError:
    return CkksParameterError(message)


def _scale_bits(degree: int, n_clients: int, bits: int) -> int:
    """The smallest scale (>= 2^25) whose predicted error bound is <= ERROR_TARGET."""
    scale_bits = MIN_SCALE_BITS
    while _error_bound(degree, scale_bits, n_clients, bits) > ERROR_TARGET and scale_bits < 58:
        scale_bits += 1
    return scale_bits


def _fits(degree: int, n_clients: int, bits: int) -> bool:
    """The headroom rule with one 60-bit data prime."""
    scale_bits = _scale_bits(degree, n_clients, bits)
    sum_bits = math.log2(n_clients) + bits - 1
    return (PRIME_BITS - 1) - scale_bits - 1 >= sum_bits + HEADROOM_MARGIN_BITS


def _max_clients(degree: int, bits: int) -> int:
    """The most clients the headroom rule admits at this N and b (0 if none)."""
    if not _fits(degree, 1, bits):
        return 0
    lo, hi = 1, 2
    while _fits(degree, hi, bits):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _fits(degree, mid, bits) else (lo, mid)
    return lo


def choose_parameters(
    n_clients: int, bits: int, *, poly_modulus_degree: int | None = None
) -> CkksParameters:
    """Secure CKKS parameters whose decrypted sum of n b-bit vectors rounds back exactly.

    The rule, with b the bits and n the most contributors a sum may have:

    1. Values: each participant encrypts integers in [-2^(b-1), 2^(b-1)), so
       |sum| <= n 2^(b-1) = 2^S with S = log2 n + b - 1.
    2. Scale Delta = 2^s: the smallest s >= 25 such that the predicted error bound
       E = 10 * 2 * sqrt(n) * sigma_fresh(N) / 2^s + (log2 N + 2) 2^(S - 53) <= 1/16,
       where sigma_fresh(N) is the modelled (and measured) std-dev of one coordinate's
       error of a fresh encryption (`fresh_error_std`: 1366 at N = 8192). Errors of
       different participants are independent, so the sum's std-dev is sqrt(n) times
       it; 10 sigmas gives ~1e-23 per coordinate; the factor 2 covers model error; the
       second term is the double-precision decoding error. decrypt_sum refuses any
       coordinate farther than 1/4 from an integer (4x the bound; < 1/2 with margin),
       so a wrong rounding needs a 40-sigma event and is caught long before that.
       The floor 2^25 keeps even the un-flooded encryption noise (sigma_e = 3.2,
       ~21,400 at N = 8192) at ~0.006 per ciphertext.
    3. Headroom: the decrypted value sum*Delta must stay inside (-q_data/2, q_data/2):
       log2(q_data) - s - 1 >= S + 1 (one bit of margin), with log2(q_data) counted as
       59 for the 60-bit data prime (SEAL's primes lie in (2^59, 2^60); the context's
       real q_data is checked against this when it is loaded). One data prime: a sum
       needs no rescaling, and a second data prime would double the upload
       (32 -> 64 bytes per value) for configurations (b + log2 n > ~32) that the
       masking path serves better; they are refused. The chain ends with a 60-bit
       special prime: TenSEAL requires key switching, and SEAL's public-key
       encryption divides by it, which is what leaves only rounding noise.
    4. N: the smallest ring degree whose 128-bit limit on total log2 q
       (4096: 109, 8192: 218, 16384: 438, 32768: 881) admits [60, 60] -> 8192 (the
       120-bit modulus is far below its 218-bit limit), or the given
       `poly_modulus_degree` if it is large enough. The upload per value does not
       depend on N (32 bytes), only the chunk granularity (N/2 values) does.

    b = 16: N = 8192, [60, 60], scale 2^25 up to ~15,000 clients, 2^26..2^27 beyond,
    refused above 32,768 (headroom); b = 20: up to 5,895 clients. Refusals
    (`CkksParameterError`) name the limit that failed and what to change.
    """
    if not isinstance(n_clients, int) or isinstance(n_clients, bool) or n_clients < 1:
        raise _refuse("n_clients must be an integer >= 1")
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 62:
        raise _refuse("bits must be an integer in 1..62")
    if poly_modulus_degree is not None and poly_modulus_degree not in SECURITY_LIMITS:
        raise _refuse(
            f"poly_modulus_degree must be one of {sorted(SECURITY_LIMITS)}, got {poly_modulus_degree}"
        )
    sum_bits = math.log2(n_clients) + bits - 1
    chain = (PRIME_BITS, PRIME_BITS)  # one data prime + the special prime
    secure = [n for n in sorted(SECURITY_LIMITS) if sum(chain) <= SECURITY_LIMITS[n]]
    if poly_modulus_degree is not None and poly_modulus_degree not in secure:
        raise _refuse(
            f"N={poly_modulus_degree}: a 60-bit data prime and a 60-bit special prime "
            f"({sum(chain)} bits) exceed its 128-bit security limit of "
            f"{SECURITY_LIMITS[poly_modulus_degree]} bits; use N >= {secure[0]} "
            "(or leave poly_modulus_degree unset)"
        )
    degree = poly_modulus_degree or secure[0]
    scale_bits = _scale_bits(degree, n_clients, bits)
    available = (PRIME_BITS - 1) - scale_bits - 1
    if not _fits(degree, n_clients, bits):
        max_bits = max((b for b in range(1, bits) if _fits(degree, n_clients, b)), default=0)
        max_n = _max_clients(degree, bits)
        fixes = []
        if max_bits:
            fixes.append(f"reduce bits to <= {max_bits}")
        if max_n:
            fixes.append(f"reduce the clients per round to <= {max_n}")
        fixes.append("or use the masking path")
        raise _refuse(
            f"CKKS headroom exceeded for n={n_clients} clients at bits={bits}: the rule "
            f"log2(q_data) - scale_bits - 1 >= log2(n * 2^(b-1)) + {HEADROOM_MARGIN_BITS} needs "
            f"{PRIME_BITS - 1} - {scale_bits} - 1 = {available} >= {sum_bits + HEADROOM_MARGIN_BITS:.2f}"
            f" (the sum could wrap the ciphertext modulus); {', '.join(fixes)}"
        )
    bound = _error_bound(degree, scale_bits, n_clients, bits)
    if bound > ERROR_TARGET:  # unreachable while the headroom rule holds; kept as a guard
        raise _refuse(
            f"CKKS decryption error bound {bound:.3g} exceeds {ERROR_TARGET} for n={n_clients} "
            f"at bits={bits}; reduce bits or the clients per round, or use the masking path"
        )
    return CkksParameters(degree, chain, scale_bits, bits, n_clients)


def check_parameters(params: CkksParameters, *, n_clients: int, bits: int) -> None:
    """Refuse announced parameters that are insecure or too small for (n, b) (participant side)."""
    if not isinstance(params, CkksParameters):
        raise CkksParameterError("parameters must be CkksParameters")
    if params.bits != bits:
        raise CkksParameterError(f"announced bits={params.bits}, the round uses bits={bits}")
    if params.max_clients < n_clients:
        raise CkksParameterError(
            f"announced parameters cover {params.max_clients} clients, the round may have {n_clients}"
        )
    limit = SECURITY_LIMITS.get(params.poly_modulus_degree)
    if limit is None or sum(params.coeff_mod_bit_sizes) > limit:
        raise CkksParameterError(
            f"N={params.poly_modulus_degree} with total log2 q = {sum(params.coeff_mod_bit_sizes)}"
            " is outside the 128-bit security limits"
        )
    if len(params.coeff_mod_bit_sizes) < 2 or any(
        not 20 <= p <= PRIME_BITS for p in params.coeff_mod_bit_sizes
    ):
        raise CkksParameterError("coeff_mod_bit_sizes must be >= 2 primes of 20..60 bits")
    if params.scale_bits < MIN_SCALE_BITS:
        raise CkksParameterError(f"scale 2^{params.scale_bits} is below 2^{MIN_SCALE_BITS}")
    if params.headroom_bits < HEADROOM_MARGIN_BITS:
        raise CkksParameterError(
            f"headroom: log2(q_data) - scale_bits - 1 - log2(n 2^(b-1)) = "
            f"{params.headroom_bits:.2f} bits < {HEADROOM_MARGIN_BITS}"
        )
    if params.error_bound > ERROR_TARGET:
        raise CkksParameterError(
            f"decryption error bound {params.error_bound:.3g} exceeds {ERROR_TARGET}"
        )


# ---------------------------------------------------------------------------
# TenSEAL contexts


def _serialize_public(context: ts.Context) -> bytes:
    public = context.copy()
    public.make_context_public()
    return public.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )


def _check_context(context: ts.Context, params: CkksParameters) -> None:
    """The context really has the announced N, modulus chain and scale."""
    try:
        seal = context.seal_context().data
        key_data, first = seal.key_context_data(), seal.first_context_data()
        degree = key_data.parms().poly_modulus_degree()
        total_bits = key_data.total_coeff_modulus_bit_count()
        q_data = int(first.total_coeff_modulus())
        scale = context.global_scale
    except Exception as exc:  # noqa: BLE001 - any failure to inspect is a refusal
        raise ContextAuthenticationError("context parameters cannot be read") from exc
    if degree != params.poly_modulus_degree or total_bits != sum(params.coeff_mod_bit_sizes):
        raise ContextAuthenticationError(
            "context N or modulus differs from the announced parameters"
        )
    if q_data.bit_length() - 1 < params.data_modulus_bits:
        raise ContextAuthenticationError("context data modulus is smaller than announced")
    if scale != params.scale:
        raise ContextAuthenticationError("context scale differs from the announced parameters")


def _new_secret_context(params: CkksParameters) -> ts.Context:
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
    )
    ctx.global_scale = params.scale
    return ctx


def _load_public_context(data: bytes, params: CkksParameters) -> ts.Context:
    try:
        ctx = ts.context_from(bytes(data))
    except Exception as exc:  # noqa: BLE001
        raise ContextAuthenticationError("public context does not parse") from exc
    if ctx.is_private() or ctx.has_secret_key() or not ctx.has_public_key():
        raise ContextAuthenticationError(
            "announced context must hold a public key and no secret key"
        )
    _check_context(ctx, params)
    return ctx


# ---------------------------------------------------------------------------
# Signed messages (the gRPC layer carries their fields; every check is here)

_ANNOUNCE_LABEL = "blindsum/ckks/v1/public-context"
_ENROL_LABEL = "blindsum/ckks/v1/member-enrolment"
_SEALED_LABEL = "blindsum/ckks/v1/sealed-secret-context"
_SEALED_PURPOSE = b"blindsum/ckks/v1/secret-context-channel"
_RECEIPT_LABEL = "blindsum/ckks/v1/upload-receipt"
_UPLOAD_LABEL = "blindsum/ckks/v1/upload"
_SUM_LABEL = "blindsum/ckks/v1/sum"
_ATTEST_LABEL = "blindsum/ckks/v1/sum-attestation"


def _run_session(federation: str, run_id: bytes) -> bytes:
    return crypto.digest("blindsum/ckks/v1/run", federation, run_id)


@dataclass(frozen=True)
class PublicContextAnnouncement:
    """The lead's signed public context for a run (sent to the aggregator and participants)."""

    federation: str
    run_id: bytes
    lead: int
    parameters: CkksParameters
    public_context: bytes
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        return crypto.digest(
            _ANNOUNCE_LABEL,
            self.federation,
            self.run_id,
            self.lead,
            *self.parameters.encoding(),
            crypto.digest(self.public_context),
        )

    @property
    def context_digest(self) -> bytes:
        return crypto.digest(self.public_context)


@dataclass(frozen=True)
class MemberEnrolment:
    """A non-lead committee member's per-run X25519 public key, signed with its roster key."""

    federation: str
    run_id: bytes
    member: int
    agreement_public: bytes
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        return crypto.digest(
            _ENROL_LABEL, self.federation, self.run_id, self.member, self.agreement_public
        )


@dataclass(frozen=True)
class SealedSecretContext:
    """The secret context for one member: ephemeral X25519 + AES-256-GCM, signed by the lead."""

    federation: str
    run_id: bytes
    lead: int
    member: int
    member_agreement_public: bytes
    ephemeral_public: bytes
    public_context_digest: bytes
    ciphertext: bytes
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        return crypto.digest(
            _SEALED_LABEL,
            self.federation,
            self.run_id,
            self.lead,
            self.member,
            self.member_agreement_public,
            self.ephemeral_public,
            self.public_context_digest,
            crypto.digest(self.ciphertext),
        )


@dataclass(frozen=True)
class UploadReceipt:
    """A participant's signed statement of its upload (the committee counts contributors from these)."""

    federation: str
    run_id: bytes
    round: int
    participant: int
    chunks: int
    upload_digest: bytes
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        return crypto.digest(
            _RECEIPT_LABEL,
            self.federation,
            self.run_id,
            self.round,
            self.participant,
            self.chunks,
            self.upload_digest,
        )


@dataclass(frozen=True)
class SumAttestation:
    """A committee member's signature over the integer sum it decrypted."""

    federation: str
    run_id: bytes
    round: int
    member: int
    contributors: tuple[int, ...]
    ciphertext_digest: bytes  # digest of the encrypted sum the member was given
    sum_digest: bytes
    signature: bytes = b""

    def statement(self) -> tuple:
        """What every member must agree on (everything but the member and its signature)."""
        return (
            self.federation,
            self.run_id,
            self.round,
            self.contributors,
            self.ciphertext_digest,
            self.sum_digest,
        )

    def signed_bytes(self) -> bytes:
        return crypto.digest(
            _ATTEST_LABEL,
            self.federation,
            self.run_id,
            self.round,
            self.member,
            len(self.contributors),
            *self.contributors,
            self.ciphertext_digest,
            self.sum_digest,
        )


def _with_signature(message, key: crypto.SigningKey):
    from dataclasses import replace

    return replace(message, signature=key.sign(message.signed_bytes()))


def _verify(message, public: bytes, what: str) -> None:
    if not crypto.verify_signature(public, message.signed_bytes(), message.signature):
        raise ContextAuthenticationError(f"{what}: signature does not verify")


# ---------------------------------------------------------------------------
# Key custody


def enrol_member(
    signing_key: crypto.SigningKey, *, member: int, federation: str, run_id: bytes
) -> tuple[crypto.AgreementKey, MemberEnrolment]:
    """A member's fresh per-run X25519 key (keep it secret) and its signed enrolment."""
    key = crypto.AgreementKey.generate()
    enrolment = MemberEnrolment(federation, bytes(run_id), member, key.public)
    return key, _with_signature(enrolment, signing_key)


class CommitteeKeys:
    """The committee lead's fresh CKKS key pair for one run.

    The secret context never leaves this object except sealed to a member
    (`seal_secret_context`) or as the lead's own decryption context.
    """

    def __init__(
        self,
        params: CkksParameters,
        *,
        federation: str,
        run_id: bytes,
        lead: int,
        signing_key: crypto.SigningKey,
    ) -> None:
        if not isinstance(run_id, bytes | bytearray) or not run_id:
            raise ValueError("run_id must be non-empty bytes")
        self.params = params
        self.federation = federation
        self.run_id = bytes(run_id)
        self.lead = lead
        self._signing_key = signing_key
        self._context: ts.Context | None = _new_secret_context(params)
        self._public = _serialize_public(self._context)
        self._announcement = _with_signature(
            PublicContextAnnouncement(federation, self.run_id, lead, params, self._public),
            signing_key,
        )

    @classmethod
    def generate(
        cls,
        n_clients: int,
        bits: int,
        *,
        federation: str,
        run_id: bytes,
        lead: int,
        signing_key: crypto.SigningKey,
        poly_modulus_degree: int | None = None,
    ) -> CommitteeKeys:
        params = choose_parameters(n_clients, bits, poly_modulus_degree=poly_modulus_degree)
        return cls(params, federation=federation, run_id=run_id, lead=lead, signing_key=signing_key)

    @property
    def public_context_bytes(self) -> bytes:
        """The serialized public context (public key only: no secret, relin or Galois keys)."""
        return self._public

    def announcement(self) -> PublicContextAnnouncement:
        return self._announcement

    def secret_context(self) -> ts.Context:
        """The lead's own decryption context."""
        if self._context is None:
            raise CkksError("committee key was erased")
        return self._context

    def seal_secret_context(
        self, enrolment: MemberEnrolment, member_signing_public: bytes
    ) -> SealedSecretContext:
        """The secret context for one member, end-to-end encrypted and signed."""
        if self._context is None:
            raise CkksError("committee key was erased")
        _verify(enrolment, member_signing_public, "member enrolment")
        if enrolment.federation != self.federation or enrolment.run_id != self.run_id:
            raise ContextAuthenticationError("member enrolment is for another federation or run")
        if enrolment.member == self.lead:
            raise ContextAuthenticationError("the lead does not seal a context to itself")
        session = _run_session(self.federation, self.run_id)
        ephemeral = crypto.AgreementKey.generate()
        try:
            key = crypto.agree(
                ephemeral,
                enrolment.agreement_public,
                session=session,
                purpose=_SEALED_PURPOSE,
                a=self.lead,
                b=enrolment.member,
            )
        except SecAggError as exc:
            raise ContextAuthenticationError(f"member agreement key refused: {exc}") from None
        finally:
            ephemeral_public = ephemeral.public
            ephemeral.erase()
        secret = self._context.serialize(
            save_public_key=True,
            save_secret_key=True,
            save_galois_keys=False,
            save_relin_keys=False,
        )
        associated = crypto.digest(
            enrolment.agreement_public, ephemeral_public, self._announcement.context_digest
        )
        blob = crypto.seal(
            key,
            secret,
            session=session,
            stage=0,
            sender=self.lead,
            recipient=enrolment.member,
            associated=associated,
        )
        sealed = SealedSecretContext(
            self.federation,
            self.run_id,
            self.lead,
            enrolment.member,
            enrolment.agreement_public,
            ephemeral_public,
            self._announcement.context_digest,
            blob,
        )
        return _with_signature(sealed, self._signing_key)

    def erase(self) -> None:
        """Drop the secret context (best effort: TenSEAL's C++ memory is not wiped)."""
        self._context = None

    def __repr__(self) -> str:
        return f"CommitteeKeys(run={self.run_id.hex()[:16]}, lead={self.lead}, secret=<hidden>)"

    def __reduce__(self):
        raise TypeError("CommitteeKeys cannot be pickled")


def open_secret_context(
    sealed: SealedSecretContext,
    agreement_key: crypto.AgreementKey,
    *,
    member: int,
    lead_public_key: bytes,
    announcement: PublicContextAnnouncement,
    federation: str,
    run_id: bytes,
) -> ts.Context:
    """Member side: check signature, routing and digest, then open the secret context."""
    _verify(sealed, lead_public_key, "sealed secret context")
    _verify(announcement, lead_public_key, "public context announcement")
    if sealed.federation != federation or sealed.run_id != bytes(run_id):
        raise ContextAuthenticationError("sealed secret context is for another federation or run")
    if announcement.federation != federation or announcement.run_id != bytes(run_id):
        raise ContextAuthenticationError("announcement is for another federation or run")
    if sealed.lead != announcement.lead:
        raise ContextAuthenticationError("sealed secret context is not from the announced lead")
    if sealed.member != member or sealed.member_agreement_public != agreement_key.public:
        raise ContextAuthenticationError("sealed secret context is addressed to another member")
    if sealed.public_context_digest != announcement.context_digest:
        raise ContextAuthenticationError("sealed secret context is for another public context")
    session = _run_session(federation, bytes(run_id))
    try:
        key = crypto.agree(
            agreement_key,
            sealed.ephemeral_public,
            session=session,
            purpose=_SEALED_PURPOSE,
            a=sealed.lead,
            b=member,
        )
        secret = crypto.open_(
            key,
            sealed.ciphertext,
            session=session,
            stage=0,
            sender=sealed.lead,
            recipient=member,
            associated=crypto.digest(
                sealed.member_agreement_public,
                sealed.ephemeral_public,
                sealed.public_context_digest,
            ),
        )
    except SecAggError as exc:
        raise ContextAuthenticationError(f"sealed secret context: {exc}") from None
    try:
        ctx = ts.context_from(secret)
    except Exception as exc:  # noqa: BLE001
        raise ContextAuthenticationError("sealed secret context does not parse") from exc
    if not ctx.is_private():
        raise ContextAuthenticationError("sealed context holds no secret key")
    _check_context(ctx, announcement.parameters)
    if crypto.digest(_serialize_public(ctx)) != announcement.context_digest:
        raise ContextAuthenticationError("secret context does not match the announced public key")
    return ctx


def verify_public_context(
    announcement: PublicContextAnnouncement,
    lead_public_key: bytes,
    *,
    federation: str | None = None,
    run_id: bytes | None = None,
    n_clients: int | None = None,
    bits: int | None = None,
) -> ts.Context:
    """Participant/aggregator side: the public context, only if signed by the roster's lead.

    Raises ContextAuthenticationError (not signed by the lead, other run, a secret key
    inside, context not matching the announced parameters) or CkksParameterError (the
    announced parameters are insecure or too small for this round's n and b).
    """
    if not isinstance(announcement, PublicContextAnnouncement):
        raise ContextAuthenticationError("not a public context announcement")
    _verify(announcement, lead_public_key, "public context announcement")
    if federation is not None and announcement.federation != federation:
        raise ContextAuthenticationError("announcement is for another federation")
    if run_id is not None and announcement.run_id != bytes(run_id):
        raise ContextAuthenticationError("announcement is for another run")
    params = announcement.parameters
    check_parameters(
        params,
        n_clients=params.max_clients if n_clients is None else n_clients,
        bits=params.bits if bits is None else bits,
    )
    return _load_public_context(announcement.public_context, params)


# ---------------------------------------------------------------------------
# Encryption (participant)

_WORKER_CONTEXTS: dict[bytes, ts.Context] = {}
_WORKER_LOCK = threading.Lock()


def _worker_context(context_bytes: bytes) -> ts.Context:
    key = crypto.digest(context_bytes)
    with _WORKER_LOCK:
        ctx = _WORKER_CONTEXTS.get(key)
        if ctx is None:
            ctx = ts.context_from(context_bytes, n_threads=1)  # one core per worker
            _WORKER_CONTEXTS.clear()
            _WORKER_CONTEXTS[key] = ctx
    return ctx


def _encrypt_chunks(context_bytes: bytes, values: np.ndarray, slots: int) -> list[bytes]:
    """Encrypt `values` (float64) as consecutive `slots`-sized CKKS vectors (worker-safe)."""
    ctx = _worker_context(context_bytes)
    return [
        ts.ckks_vector(ctx, values[i : i + slots]).serialize() for i in range(0, values.size, slots)
    ]


def _centre(encoded: np.ndarray, bits: int) -> np.ndarray:
    x = np.asarray(encoded)
    if x.ndim != 1 or x.dtype.kind not in "ui" or x.size == 0:
        raise ValueError("encoded update must be a non-empty 1-D integer vector")
    m = 1 << bits
    if int(x.min()) < 0 or int(x.max()) >= m:
        raise ValueError(f"encoded update must lie in [0, 2^{bits})")
    v = x.astype(np.int64)
    v[v >= m // 2] -= m  # two's complement: [-2^(b-1), 2^(b-1))
    return v.astype(np.float64)


def _public_context_parts(public_context: ts.Context | bytes) -> tuple[ts.Context, bytes]:
    if isinstance(public_context, bytes | bytearray):
        data = bytes(public_context)
        ctx = ts.context_from(data)
    elif isinstance(public_context, ts.Context):
        ctx = public_context
        data = None
    else:
        raise TypeError("public_context must be a tenseal Context or its serialization")
    if ctx.is_private():
        raise CkksError(
            "participants encrypt under the public context only (it holds a secret key)"
        )
    if data is None:
        data = ctx.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=False,
        )
    return ctx, data


def encrypt_update(
    encoded: np.ndarray,
    bits: int,
    public_context: ts.Context | bytes,
    workers: int = 1,
    *,
    executor: Executor | None = None,
) -> list[bytes]:
    """Serialized CKKS chunk ciphertexts of one DDG-encoded update (uint vector mod 2^b).

    Centres to [-2^(b-1), 2^(b-1)), splits into N/2-slot vectors and encrypts each.
    With an executor, or workers > 1, contiguous slices (`workers` of them at most)
    go to worker processes, so TenSEAL, which holds the GIL while it encrypts,
    does not stall the caller's other threads; the chunk order is preserved.
    """
    ctx, data = _public_context_parts(public_context)
    values = _centre(encoded, bits)
    slots = ctx.seal_context().data.key_context_data().parms().poly_modulus_degree() // 2
    n_chunks = -(-values.size // slots)
    parts = min(n_chunks, max(1, workers))
    if parts == 1 and executor is None:
        return _encrypt_chunks(data, values, slots)
    per = -(-n_chunks // parts) * slots
    slices = [values[i : i + per] for i in range(0, values.size, per)]
    own = None
    if executor is None:
        own = executor = encryption_pool(parts)
    try:
        futures = [executor.submit(_encrypt_chunks, data, s, slots) for s in slices]
        return [c for f in futures for c in f.result()]
    finally:
        if own is not None:
            own.shutdown()


def encryption_pool(workers: int, start_method: str = "spawn") -> ProcessPoolExecutor:
    """Worker processes for `encrypt_update`, each loading the context single-threaded.

    "spawn" (default) is safe in a process that runs gRPC or has TenSEAL thread pools;
    its workers re-import the main module, so the entry point needs an
    `if __name__ == "__main__":` guard (the `blindsum` console script has one).
    "fork" starts faster and needs no guard, but only in a process without gRPC
    (the benchmark uses it).
    """
    return worker_pool(workers, start_method=start_method)


def _worker_ready(_index: int = 0) -> int:
    return os.getpid()


def warm_up(executor: Executor, workers: int) -> None:
    """Start the worker processes (imports TenSEAL there) before anything is timed."""
    list(executor.map(_worker_ready, range(2 * workers)))


def upload_digest(
    chunks: Iterable[bytes], *, federation: str, run_id: bytes, round: int, participant: int
) -> bytes:
    """Chained digest of an upload's chunk ciphertexts, bound to (run, round, participant)."""
    h = crypto.digest(_UPLOAD_LABEL, federation, run_id, round, participant)
    count = 0
    for chunk in chunks:
        h = crypto.digest(_UPLOAD_LABEL, h, count, chunk)
        count += 1
    return crypto.digest(_UPLOAD_LABEL, h, count)


def sign_upload_receipt(
    chunks: Sequence[bytes],
    signing_key: crypto.SigningKey,
    *,
    federation: str,
    run_id: bytes,
    round: int,
    participant: int,
) -> UploadReceipt:
    receipt = UploadReceipt(
        federation,
        bytes(run_id),
        round,
        participant,
        len(chunks),
        upload_digest(
            chunks, federation=federation, run_id=run_id, round=round, participant=participant
        ),
    )
    return _with_signature(receipt, signing_key)


def verify_upload_receipts(
    receipts: Iterable[UploadReceipt],
    roster: Mapping[int, bytes],
    *,
    federation: str,
    run_id: bytes,
    round: int,
    chunks: int,
) -> tuple[int, ...]:
    """The sorted contributor ids, after checking every receipt (signature, run, round, size)."""
    seen: set[int] = set()
    for r in receipts:
        if r.participant not in roster:
            raise ContextAuthenticationError(
                f"upload receipt from unknown participant {r.participant}"
            )
        if r.participant in seen:
            raise ContextAuthenticationError(
                f"two upload receipts from participant {r.participant}"
            )
        _verify(r, roster[r.participant], f"upload receipt of participant {r.participant}")
        if (r.federation, r.run_id, r.round) != (federation, bytes(run_id), round):
            raise ContextAuthenticationError(
                f"upload receipt of participant {r.participant} is for another run or round"
            )
        if r.chunks != chunks:
            raise ContextAuthenticationError(
                f"upload receipt of participant {r.participant} names {r.chunks} chunks, not {chunks}"
            )
        seen.add(r.participant)
    return tuple(sorted(seen))


# ---------------------------------------------------------------------------
# Aggregation (aggregator: public context only)


class CiphertextAccumulator:
    """Adds participants' chunk ciphertexts into one running encrypted sum as they arrive.

    Memory: the running sum (one encrypted vector) plus, for an upload in progress,
    the chunks already added from it (so that an upload broken off before its last
    chunk is subtracted again: the participant is then simply absent). Uploads that
    overlap in time each keep their own journal; a relay that serializes uploads
    (one at a time into the accumulator) keeps memory at two encrypted vectors.
    Never needs, and refuses, a secret key.
    """

    def __init__(
        self,
        public_context: ts.Context,
        params: CkksParameters,
        length: int,
        *,
        federation: str = "",
        run_id: bytes = b"",
        round: int = 0,
    ) -> None:
        if public_context.is_private() or public_context.has_secret_key():
            raise CkksError("the aggregator's accumulator takes the public context only")
        _check_context(public_context, params)
        self._ctx = public_context
        self.params = params
        self.length = length
        self.n_chunks = params.chunks(length)
        self._sizes = [min(params.slots, length - i * params.slots) for i in range(self.n_chunks)]
        self._first_parms = public_context.seal_context().data.first_parms_id()
        self._sum: list[ts.CKKSVector | None] = [None] * self.n_chunks
        # uploads summed into each chunk: removing the only one resets the chunk
        # (subtracting it would leave a transparent ciphertext, which SEAL refuses)
        self._count = [0] * self.n_chunks
        self._journal: dict[int, list[ts.CKKSVector]] = {}
        self._digest: dict[int, bytes] = {}
        self._binding = (federation, bytes(run_id), round)
        self.receipts: dict[int, UploadReceipt] = {}
        self.seconds = 0.0

    @property
    def contributors(self) -> tuple[int, ...]:
        return tuple(sorted(self.receipts))

    def begin(self, participant: int) -> None:
        if participant in self.receipts or participant in self._journal:
            raise CkksError(f"participant {participant} already uploaded")
        self._journal[participant] = []
        federation, run_id, round_ = self._binding
        self._digest[participant] = crypto.digest(
            _UPLOAD_LABEL, federation, run_id, round_, participant
        )

    def _parse(self, index: int, data: bytes) -> ts.CKKSVector:
        try:
            vec = ts.ckks_vector_from(self._ctx, bytes(data))
            ct = vec.ciphertext()
        except Exception as exc:  # noqa: BLE001 - malformed upload
            raise CkksError(f"chunk {index} is not a ciphertext for this context") from exc
        if (
            vec.size() != self._sizes[index]
            or len(ct) != 1
            or ct[0].size() != 2
            or ct[0].is_transparent()
            or not ct[0].is_ntt_form()
            or ct[0].scale != self.params.scale
            or ct[0].coeff_modulus_size() != 1
            or ct[0].parms_id() != self._first_parms
        ):
            raise CkksError(f"chunk {index} has the wrong size, level or scale")
        return vec

    def add_chunk(self, participant: int, data: bytes) -> None:
        """Add the participant's next chunk (chunks arrive in order)."""
        journal = self._journal.get(participant)
        if journal is None:
            raise CkksError(f"participant {participant} has no upload in progress")
        index = len(journal)
        if index >= self.n_chunks:
            raise CkksError(f"participant {participant} sent more than {self.n_chunks} chunks")
        t0 = time.perf_counter()
        vec = self._parse(index, data)
        self._digest[participant] = crypto.digest(
            _UPLOAD_LABEL, self._digest[participant], index, data
        )
        if self._sum[index] is None:
            self._sum[index] = ts.ckks_vector_from(self._ctx, bytes(data))  # (copy() is slow)
        else:
            self._sum[index].add_(vec)
        self._count[index] += 1
        journal.append(vec)
        self.seconds += time.perf_counter() - t0

    def abandon(self, participant: int) -> None:
        """Remove a broken-off upload: the participant is absent from the sum."""
        journal = self._journal.pop(participant, [])
        self._digest.pop(participant, None)
        for index, vec in enumerate(journal):
            self._count[index] -= 1
            if self._count[index] == 0:
                self._sum[index] = None
            else:
                self._sum[index].sub_(vec)

    def commit(self, participant: int, receipt: UploadReceipt) -> None:
        """Accept a complete upload whose signed receipt matches what arrived.

        The receipt's signature is checked by the committee (against the roster); here
        only that it names this participant, the chunk count and the digest received.
        """
        journal = self._journal.get(participant)
        if journal is None:
            raise CkksError(f"participant {participant} has no upload in progress")
        expected = crypto.digest(_UPLOAD_LABEL, self._digest[participant], len(journal))
        if (
            len(journal) != self.n_chunks
            or receipt.participant != participant
            or receipt.chunks != self.n_chunks
            or receipt.upload_digest != expected
            or (receipt.federation, receipt.run_id, receipt.round) != self._binding
        ):
            self.abandon(participant)
            raise CkksError(
                f"upload of participant {participant} is incomplete or does not match its receipt"
            )
        del self._journal[participant]
        del self._digest[participant]
        self.receipts[participant] = receipt

    def add_upload(self, participant: int, chunks: Iterable[bytes], receipt: UploadReceipt) -> None:
        """begin + add_chunk for each + commit; a failure anywhere abandons the upload."""
        self.begin(participant)
        try:
            for chunk in chunks:
                self.add_chunk(participant, chunk)
        except BaseException:
            self.abandon(participant)
            raise
        self.commit(participant, receipt)

    def result(self) -> list[bytes]:
        """The encrypted sum of the committed uploads, as serialized chunk ciphertexts."""
        if self._journal:
            raise CkksError("uploads still in progress: commit or abandon them first")
        if not self.receipts:
            raise CkksError("no upload was committed")
        return [vec.serialize() for vec in self._sum]


def ciphertext_digest(ciphertexts: Sequence[bytes]) -> bytes:
    return crypto.digest(_SUM_LABEL, len(ciphertexts), *ciphertexts)


# ---------------------------------------------------------------------------
# Decryption (committee member)


def decrypt_sum(
    ciphertexts: Sequence[bytes],
    secret_context: ts.Context,
    bits: int,
    *,
    contributors: int | None = None,
    tolerance: float = DECRYPTION_TOLERANCE,
) -> np.ndarray:
    """Decrypt, round to integers, reduce mod 2^b: uint32 (b <= 32) or uint64 vector.

    Fails closed (CkksDecryptionRefused) if any coordinate is farther than `tolerance`
    from an integer (parameters keep the error below 1/16), is not finite, or (with
    `contributors`) lies outside +-contributors*2^(b-1). The raw decrypted values
    never leave this function: releasing them would leak the CKKS error, i.e.
    information about the secret key.
    """
    if not secret_context.is_private():
        raise CkksError("decrypt_sum needs the secret context")
    if not 0 < tolerance < 0.5:
        raise ValueError("tolerance must be in (0, 1/2)")
    parts = []
    for index, data in enumerate(ciphertexts):
        try:
            vec = ts.ckks_vector_from(secret_context, bytes(data))
            parts.append(np.asarray(vec.decrypt(), dtype=np.float64))
        except Exception as exc:  # noqa: BLE001
            raise CkksDecryptionRefused(f"chunk {index} does not decrypt under this key") from exc
    if not parts:
        raise CkksDecryptionRefused("no ciphertexts")
    values = np.concatenate(parts)
    del parts
    if not np.isfinite(values).all():
        raise CkksDecryptionRefused("decrypted sum has non-finite coordinates")
    rounded = np.rint(values)
    worst = float(np.max(np.abs(values - rounded)))
    del values
    if worst > tolerance:
        raise CkksDecryptionRefused(
            f"a decrypted coordinate is {worst:.3f} from the nearest integer (limit {tolerance}): "
            "CKKS error too large or a malformed upload; nothing released"
        )
    if contributors is not None:
        limit = contributors * 2.0 ** (bits - 1)
        if float(np.max(np.abs(rounded))) > limit:
            raise CkksDecryptionRefused(
                f"decrypted sum exceeds contributors*2^(b-1) = {limit:.0f}: an upload was out of range"
            )
    mask = np.uint64((1 << bits) - 1)
    out = rounded.astype(np.int64).view(np.uint64) & mask
    return out.astype(np.uint32 if bits <= 32 else np.uint64)


def sum_digest(vector: np.ndarray, bits: int | None = None) -> bytes:
    """SHA-256 of the integer sum (canonical little-endian uint64 encoding)."""
    v = np.asarray(vector)
    if v.ndim != 1 or v.dtype.kind not in "ui":
        raise ValueError("sum must be a 1-D integer vector")
    data = v.astype("<u8").tobytes()
    return crypto.digest(_SUM_LABEL, -1 if bits is None else bits, v.size, data)


class CommitteeMember:
    """One decryption-committee site for one run: decrypts sums and signs their digests.

    After any refusal the key is retired (erased): a crafted upload that makes
    decryption fail reveals at most one bit about the key per run.
    """

    def __init__(
        self,
        member: int,
        secret_context: ts.Context,
        params: CkksParameters,
        signing_key: crypto.SigningKey,
        *,
        federation: str,
        run_id: bytes,
        roster: Mapping[int, bytes],
        minimum_contributors: int = 1,
    ) -> None:
        if not secret_context.is_private():
            raise CkksError("a committee member needs the secret context")
        _check_context(secret_context, params)
        self.member = member
        self.params = params
        self._ctx: ts.Context | None = secret_context
        self._signing_key = signing_key
        self.federation = federation
        self.run_id = bytes(run_id)
        self.roster = dict(roster)
        self.minimum_contributors = minimum_contributors
        self.seconds = 0.0

    @property
    def retired(self) -> bool:
        return self._ctx is None

    def decrypt_and_attest(
        self,
        ciphertexts: Sequence[bytes],
        receipts: Iterable[UploadReceipt],
        *,
        round: int,
    ) -> tuple[np.ndarray, SumAttestation]:
        if self._ctx is None:
            raise CkksDecryptionRefused("this member's key was retired after a refusal")
        t0 = time.perf_counter()
        try:
            contributors = verify_upload_receipts(
                receipts,
                self.roster,
                federation=self.federation,
                run_id=self.run_id,
                round=round,
                chunks=len(ciphertexts),
            )
            if len(contributors) < self.minimum_contributors:
                raise CkksDecryptionRefused(
                    f"{len(contributors)} contributors < the minimum {self.minimum_contributors}"
                )
            total = decrypt_sum(
                ciphertexts, self._ctx, self.params.bits, contributors=len(contributors)
            )
        except CkksError:
            self.retire()
            raise
        finally:
            self.seconds += time.perf_counter() - t0
        attestation = SumAttestation(
            self.federation,
            self.run_id,
            round,
            self.member,
            contributors,
            ciphertext_digest(ciphertexts),
            sum_digest(total, self.params.bits),
        )
        return total, _with_signature(attestation, self._signing_key)

    def retire(self) -> None:
        self._ctx = None

    def __repr__(self) -> str:
        return f"CommitteeMember(member={self.member}, retired={self.retired}, secret=<hidden>)"

    def __reduce__(self):
        raise TypeError("CommitteeMember cannot be pickled")


def agree_on_sum(
    attestations: Iterable[SumAttestation],
    committee_public_keys: Mapping[int, bytes],
    *,
    federation: str | None = None,
    run_id: bytes | None = None,
    round: int | None = None,
) -> bytes:
    """The agreed sum digest, only if every committee member signed the same statement.

    Raises CommitteeDisagreement if a member is missing, a signature fails, a member
    is not on the committee or signed twice, or two members attest different sums,
    contributor sets or ciphertexts.
    """
    by_member: dict[int, SumAttestation] = {}
    for a in attestations:
        if a.member not in committee_public_keys:
            raise CommitteeDisagreement(f"attestation from {a.member}, who is not on the committee")
        if a.member in by_member:
            raise CommitteeDisagreement(f"two attestations from member {a.member}")
        if not crypto.verify_signature(
            committee_public_keys[a.member], a.signed_bytes(), a.signature
        ):
            raise CommitteeDisagreement(f"attestation of member {a.member} does not verify")
        by_member[a.member] = a
    missing = sorted(set(committee_public_keys) - set(by_member))
    if missing:
        raise CommitteeDisagreement(f"no attestation from committee member(s) {missing}")
    statements = {a.statement() for a in by_member.values()}
    if len(statements) != 1:
        raise CommitteeDisagreement(
            "committee members attest different sums (or contributor sets): nothing released"
        )
    (statement,) = statements
    fed, run, rnd = statement[:3]
    if (
        (federation is not None and fed != federation)
        or (run_id is not None and run != bytes(run_id))
        or (round is not None and rnd != round)
    ):
        raise CommitteeDisagreement("attestations are for another federation, run or round")
    return statement[-1]


# ---------------------------------------------------------------------------
# In-memory round (tests and `blindsum bench ckks`)


@dataclass
class CkksRoundResult:
    released: np.ndarray | None
    contributors: tuple[int, ...]
    parameters: CkksParameters
    error: CkksError | None = None
    encrypt_seconds: dict[int, float] = field(default_factory=dict)
    aggregate_seconds: float = 0.0
    decrypt_seconds: dict[int, float] = field(default_factory=dict)
    bytes_up: dict[int, int] = field(default_factory=dict)
    public_context_bytes: int = 0
    sealed_context_bytes: dict[int, int] = field(default_factory=dict)
    sum_bytes: int = 0
    setup_seconds: float = 0.0


def simulate_ckks_round(
    encoded_inputs: Mapping[int, np.ndarray],
    bits: int,
    committee_size: int = 2,
    dropouts: Iterable[int] = (),
    *,
    committee_ids: Sequence[int] | None = None,
    max_clients: int | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    member_tamper=None,
    upload_tamper=None,
    federation: str = "simulated",
    round: int = 1,
) -> CkksRoundResult:
    """One CKKS round in memory: key custody, encryption, streaming sum, committee release.

    `encoded_inputs`: participant id -> dp.encode output (uint vector mod 2^b).
    Participants in `dropouts` never upload. `member_tamper(member, vector) -> vector`
    lets a test make a member report another sum; `upload_tamper(participant, chunks)`
    rewrites an upload. Errors that abort the round are returned in `.error`
    (released is then None); everything else raises.
    """
    ids = sorted(encoded_inputs)
    dropped = set(dropouts)
    committee = list(committee_ids) if committee_ids is not None else ids[:committee_size]
    if not committee:
        raise ValueError("the committee needs at least one member")
    length = len(encoded_inputs[ids[0]])
    run_id = crypto.random_bytes(16)
    site_keys = {u: crypto.SigningKey.generate() for u in sorted(set(ids) | set(committee))}
    roster = {u: k.public for u, k in site_keys.items()}
    lead = committee[0]
    result = CkksRoundResult(None, (), choose_parameters(max_clients or len(ids), bits))
    t0 = time.perf_counter()
    keys = CommitteeKeys(
        result.parameters, federation=federation, run_id=run_id, lead=lead,
        signing_key=site_keys[lead],
    )  # fmt: skip
    announcement = keys.announcement()
    result.public_context_bytes = len(announcement.public_context)
    contexts = {lead: keys.secret_context()}
    for m in committee[1:]:
        agreement, enrolment = enrol_member(
            site_keys[m], member=m, federation=federation, run_id=run_id
        )
        sealed = keys.seal_secret_context(enrolment, roster[m])
        result.sealed_context_bytes[m] = len(sealed.ciphertext)
        contexts[m] = open_secret_context(
            sealed, agreement, member=m, lead_public_key=roster[lead],
            announcement=announcement, federation=federation, run_id=run_id,
        )  # fmt: skip
        agreement.erase()
    members = {
        m: CommitteeMember(
            m,
            contexts[m],
            result.parameters,
            site_keys[m],
            federation=federation,
            run_id=run_id,
            roster={u: roster[u] for u in ids},
        )  # fmt: skip
        for m in committee
    }
    # The aggregator verifies the announcement too and keeps only the public context.
    aggregator_ctx = verify_public_context(
        announcement, roster[lead], federation=federation, run_id=run_id
    )
    accumulator = CiphertextAccumulator(
        aggregator_ctx, result.parameters, length, federation=federation, run_id=run_id,
        round=round,
    )  # fmt: skip
    result.setup_seconds = time.perf_counter() - t0
    own_pool = encryption_pool(workers) if workers > 1 and executor is None else None
    try:
        _upload_all(
            encoded_inputs, ids, dropped, announcement, roster, lead, site_keys, accumulator,
            result, bits=bits, federation=federation, run_id=run_id, round=round,
            workers=workers, executor=executor or own_pool, upload_tamper=upload_tamper,
        )  # fmt: skip
    finally:
        if own_pool is not None:
            own_pool.shutdown()
    result.aggregate_seconds = accumulator.seconds
    encrypted_sum = accumulator.result()
    result.sum_bytes = sum(len(c) for c in encrypted_sum)
    receipts = list(accumulator.receipts.values())
    result.contributors = accumulator.contributors
    totals: dict[int, np.ndarray] = {}
    attestations = []
    try:
        for m, member in members.items():
            total, attestation = member.decrypt_and_attest(encrypted_sum, receipts, round=round)
            result.decrypt_seconds[m] = member.seconds
            if member_tamper is not None:
                tampered = member_tamper(m, total)
                if tampered is not total:
                    total = tampered
                    attestation = _with_signature(
                        _replace_sum(attestation, sum_digest(total, bits)), site_keys[m]
                    )
            totals[m] = total
            attestations.append(attestation)
        agreed = agree_on_sum(
            attestations, {m: roster[m] for m in committee}, federation=federation,
            run_id=run_id, round=round,
        )  # fmt: skip
    except CkksError as exc:
        result.error = exc
        return result
    finally:
        keys.erase()
        for member in members.values():
            member.retire()
    released = totals[lead]
    if sum_digest(released, bits) != agreed:  # the aggregator checks what it releases
        result.error = CommitteeDisagreement("released vector does not match the agreed digest")
        return result
    result.released = released
    return result


def _upload_all(
    encoded_inputs, ids, dropped, announcement, roster, lead, site_keys, accumulator, result,
    *, bits, federation, run_id, round, workers, executor, upload_tamper,
) -> None:  # fmt: skip
    for u in ids:
        if u in dropped:
            continue  # no upload by the deadline: absent from the sum
        public_ctx = verify_public_context(
            announcement, roster[lead], federation=federation, run_id=run_id, bits=bits,
            n_clients=len(ids),
        )  # fmt: skip
        t0 = time.perf_counter()
        chunks = encrypt_update(
            encoded_inputs[u], bits, announcement.public_context if executor else public_ctx,
            workers, executor=executor,
        )  # fmt: skip
        receipt = sign_upload_receipt(
            chunks, site_keys[u], federation=federation, run_id=run_id, round=round,
            participant=u,
        )  # fmt: skip
        result.encrypt_seconds[u] = time.perf_counter() - t0
        if upload_tamper is not None:
            chunks = upload_tamper(u, chunks)
        result.bytes_up[u] = sum(len(c) for c in chunks)
        accumulator.add_upload(u, chunks, receipt)
        del chunks


def _replace_sum(attestation: SumAttestation, digest_: bytes) -> SumAttestation:
    from dataclasses import replace

    return replace(attestation, sum_digest=digest_, signature=b"")


TRUST_MODEL = """\
CKKS path (optional, `[federation] path = "ckks"`): trust model

* What it protects against: an aggregator that follows the protocol but tries to
  learn individual updates. The aggregator holds only the public CKKS context; it
  adds ciphertexts and relays, and it learns only the integer sum mod 2^b that
  the whole decryption committee signed (the same value the masking path
  releases, bit for bit, so the DP accounting is unchanged).
* Assumption 1 - no committee member colludes with the aggregator. A member holds
  the run's secret key; together with the aggregator (who holds every upload) it
  can decrypt each participant's upload, which carries only that participant's own
  noise share (far too little noise for the round's epsilon). One colluding member
  is enough: the committee only protects integrity (every member must sign the
  same sum), not confidentiality against its own members.
* Assumption 2 - the aggregator is not actively malicious. Unlike the masking path
  (which tolerates an actively malicious aggregator colluding with fewer than t
  participants), the committee cannot check that the ciphertext it is asked to
  decrypt is the sum of the receipted uploads: a malicious aggregator could send a
  single upload (or a crafted ciphertext) for decryption. Members do check the
  participants' signed upload receipts (contributor count >= minimum) and sign
  the contributor set with the sum, so the count in the ledger cannot be inflated
  without participant keys, but the ciphertext itself is not proven to be their sum.
* Assumption 3 - uploads are well-formed. There are no zero-knowledge proofs of
  correct encryption. A participant (or the aggregator, which has the public key)
  that submits a crafted ciphertext can make the decryption depend on the secret
  key (CCA / key-recovery attacks on CKKS, Li-Micciancio 2021). Mitigations in
  place: members release only rounded integers (never raw CKKS output), refuse
  any coordinate more than 1/4 from an integer or outside n*2^(b-1), retire the
  key after any refusal, and keys are fresh per run. These limit, but do not
  eliminate, what an active attacker learns. A malicious participant can also
  force a round to abort (availability, not privacy).
* Key custody: the committee lead generates the key pair for the run and sends
  the secret context to each member end-to-end encrypted (ephemeral X25519 +
  AES-256-GCM to the member's per-run X25519 key, which the member signed with its
  roster Ed25519 key) and signed by the lead; the aggregator only relays
  ciphertext. Participants and the aggregator refuse a public context that is not
  signed by the lead named in the roster, or whose parameters are insecure or too
  small for the round (headroom, decryption-error bound, 128-bit limits).
* Dropouts: a participant that does not upload by the deadline is absent from
  the sum (no recovery stage); the contributor count comes from the signed upload
  receipts, and a broken-off upload is subtracted again.
* Use the masking path (the default) when the aggregator or participants may be
  actively malicious; the CKKS path is for deployments that already run a trusted
  decryption committee and want the aggregator to hold only ciphertexts.
"""
