"""The secagg exception hierarchy.

Every refusal a party makes is a `ProtocolAbort` carrying one `AbortReason`, so
tests and logs can tell exactly which rule fired. Messages never contain
secrets (keys, seeds, shares, unmasked vectors): only ids, sizes and stage names.
"""

from __future__ import annotations

import enum


class SecAggError(Exception):
    """Base class of every secagg error."""


class CryptoError(SecAggError):
    """A cryptographic check failed (bad key, failed authentication, ...)."""


class ConfigurationError(SecAggError, ValueError):
    """Parameters that cannot give a secure or live protocol (named in the text)."""


class AbortReason(enum.Enum):
    # Message-level
    MALFORMED_MESSAGE = "malformed-message"  # undecodable, wrong lengths, out-of-range values
    WRONG_STAGE = "wrong-stage"  # a message for another stage than the one we are in
    WRONG_SESSION = "wrong-session"  # session id or round that is not ours
    REPLAY = "replay"  # a message for a stage we already answered
    # Round config
    CONFIG_SIGNATURE = "config-signature"  # round config not signed by the aggregator key
    CONFIG_MISMATCH = "config-mismatch"  # peers signed a different round config digest
    WEAK_PARAMETERS = "weak-parameters"  # k, t or n outside what our own policy accepts
    # Keys and signatures
    INVALID_KEY = "invalid-key"  # malformed or low-order public key
    DUPLICATE_KEY = "duplicate-key"  # the same public key advertised twice
    MISSING_KEY = "missing-key"  # a neighbour's advertisement is absent
    TOO_MANY_PARTICIPANTS = "too-many-participants"  # more than the roster, or unknown ids
    UNKNOWN_PARTICIPANT = "unknown-participant"  # an id that is not in the roster / the set
    DUPLICATE_IDS = "duplicate-ids"  # an id listed twice
    BAD_SIGNATURE = "bad-signature"  # a signature that does not verify
    MISSING_SIGNATURE = "missing-signature"  # a signature the protocol requires is absent
    # Shares
    SHARE_AUTHENTICATION = "share-authentication"  # share ciphertext failed AES-GCM
    SHARE_ROUTING = "share-routing"  # share plaintext names the wrong session/sender/recipient
    SHARE_COMMITMENT = "share-commitment"  # decrypted share does not match its commitment
    # Sets and thresholds
    BELOW_THRESHOLD = "below-threshold"  # some set (or its overlap with our neighbours) < t
    BELOW_MINIMUM_AGGREGATE = "below-minimum-aggregate"  # |U3| < our policy's minimum
    NOT_SUBSET = "not-subset"  # U3 not within U2, U4 not within U3
    INCONSISTENT_SURVIVORS = "inconsistent-survivors"  # consistency signatures over other U3s
    # Unmasking
    BOTH_SHARES_REQUESTED = "both-shares-requested"  # would release b and s^SK of one peer
    DEAD_PEER_UNKNOWN = "dead-peer-unknown"  # dead list names a peer we hold no share of
    SELF_IN_REQUEST = "self-in-request"  # we were named in our own alive/dead list
    REQUEST_MISMATCH = "request-mismatch"  # alive/dead lists differ from the U3 we signed
    SECOND_UNMASKING_REQUEST = "second-unmasking-request"  # we already answered unmasking
    # Aggregator-side
    BAD_SHARE = "bad-share"  # a returned share fails its commitment (the holder is named)
    REBUILD_MISMATCH = "rebuild-mismatch"  # rebuilt s^SK / b does not match what was committed
    NOT_ENOUGH_PARTICIPANTS = "not-enough-participants"  # fewer than t usable messages
    SHUTDOWN = "shutdown"  # the party is stopping (deadline, SIGTERM): nothing is released
    INTERNAL_ERROR = "internal-error"  # the party itself failed (e.g. a worker process died)


class ProtocolAbort(SecAggError):
    """A party refuses to go on. Its secrets are erased before this propagates."""

    def __init__(self, reason: AbortReason, detail: str = "", *, culprit: int | None = None):
        self.reason = reason
        self.detail = detail
        self.culprit = culprit  # a participant id proven to have misbehaved, if any
        text = reason.value if not detail else f"{reason.value}: {detail}"
        super().__init__(text)


class MalformedMessage(ProtocolAbort):
    """A message that cannot be decoded or has out-of-range fields.

    The aggregator rejects such a message from one participant without changing
    its state; a participant treats one from the aggregator as an abort.
    """

    def __init__(self, detail: str, *, culprit: int | None = None):
        super().__init__(AbortReason.MALFORMED_MESSAGE, detail, culprit=culprit)
