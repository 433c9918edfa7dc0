from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RoundConfig(_message.Message):
    __slots__ = ("federation", "round", "nonce", "participants", "bits", "dimension", "vector_name", "application")
    FEDERATION_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_NAME_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    federation: str
    round: int
    nonce: bytes
    participants: _containers.RepeatedScalarFieldContainer[int]
    bits: int
    dimension: int
    vector_name: str
    application: bytes
    def __init__(self, federation: _Optional[str] = ..., round: _Optional[int] = ..., nonce: _Optional[bytes] = ..., participants: _Optional[_Iterable[int]] = ..., bits: _Optional[int] = ..., dimension: _Optional[int] = ..., vector_name: _Optional[str] = ..., application: _Optional[bytes] = ...) -> None: ...

class SignedRoundConfig(_message.Message):
    __slots__ = ("round_config", "signature")
    ROUND_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    round_config: bytes
    signature: bytes
    def __init__(self, round_config: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class AdvertiseKeys(_message.Message):
    __slots__ = ("sender", "config_digest", "channel_public_key", "mask_public_key", "signature")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    MASK_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    sender: int
    config_digest: bytes
    channel_public_key: bytes
    mask_public_key: bytes
    signature: bytes
    def __init__(self, sender: _Optional[int] = ..., config_digest: _Optional[bytes] = ..., channel_public_key: _Optional[bytes] = ..., mask_public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GraphParameters(_message.Message):
    __slots__ = ("n", "k", "t", "full")
    N_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    T_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    n: int
    k: int
    t: int
    full: bool
    def __init__(self, n: _Optional[int] = ..., k: _Optional[int] = ..., t: _Optional[int] = ..., full: _Optional[bool] = ...) -> None: ...

class ShareKeysRequest(_message.Message):
    __slots__ = ("graph", "advertisements")
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    ADVERTISEMENTS_FIELD_NUMBER: _ClassVar[int]
    graph: GraphParameters
    advertisements: _containers.RepeatedCompositeFieldContainer[AdvertiseKeys]
    def __init__(self, graph: _Optional[_Union[GraphParameters, _Mapping]] = ..., advertisements: _Optional[_Iterable[_Union[AdvertiseKeys, _Mapping]]] = ...) -> None: ...

class EncryptedShares(_message.Message):
    __slots__ = ("recipient", "ciphertext", "self_seed_share_commitment", "mask_key_share_commitment")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    SELF_SEED_SHARE_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    MASK_KEY_SHARE_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    recipient: int
    ciphertext: bytes
    self_seed_share_commitment: bytes
    mask_key_share_commitment: bytes
    def __init__(self, recipient: _Optional[int] = ..., ciphertext: _Optional[bytes] = ..., self_seed_share_commitment: _Optional[bytes] = ..., mask_key_share_commitment: _Optional[bytes] = ...) -> None: ...

class ShareBundle(_message.Message):
    __slots__ = ("session_id", "sender", "recipient", "self_seed_share", "mask_key_share")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    SELF_SEED_SHARE_FIELD_NUMBER: _ClassVar[int]
    MASK_KEY_SHARE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    recipient: int
    self_seed_share: bytes
    mask_key_share: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., recipient: _Optional[int] = ..., self_seed_share: _Optional[bytes] = ..., mask_key_share: _Optional[bytes] = ...) -> None: ...

class ShareKeys(_message.Message):
    __slots__ = ("session_id", "sender", "self_seed_commitment", "shares", "signature")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SELF_SEED_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    self_seed_commitment: bytes
    shares: _containers.RepeatedCompositeFieldContainer[EncryptedShares]
    signature: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., self_seed_commitment: _Optional[bytes] = ..., shares: _Optional[_Iterable[_Union[EncryptedShares, _Mapping]]] = ..., signature: _Optional[bytes] = ...) -> None: ...

class RoutedShares(_message.Message):
    __slots__ = ("sender", "shares")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    sender: int
    shares: EncryptedShares
    def __init__(self, sender: _Optional[int] = ..., shares: _Optional[_Union[EncryptedShares, _Mapping]] = ...) -> None: ...

class MaskedInputRequest(_message.Message):
    __slots__ = ("session_id", "shares")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    shares: _containers.RepeatedCompositeFieldContainer[RoutedShares]
    def __init__(self, session_id: _Optional[bytes] = ..., shares: _Optional[_Iterable[_Union[RoutedShares, _Mapping]]] = ...) -> None: ...

class MaskedInput(_message.Message):
    __slots__ = ("session_id", "sender", "vector")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    vector: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., vector: _Optional[bytes] = ...) -> None: ...

class ConsistencyRequest(_message.Message):
    __slots__ = ("session_id", "survivors")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SURVIVORS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    survivors: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, session_id: _Optional[bytes] = ..., survivors: _Optional[_Iterable[int]] = ...) -> None: ...

class ConsistencySignature(_message.Message):
    __slots__ = ("session_id", "sender", "survivors_digest", "signature")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SURVIVORS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    survivors_digest: bytes
    signature: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., survivors_digest: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class UnmaskingRequest(_message.Message):
    __slots__ = ("session_id", "signatures", "alive", "dead")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[ConsistencySignature]
    alive: _containers.RepeatedScalarFieldContainer[int]
    dead: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, session_id: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[ConsistencySignature, _Mapping]]] = ..., alive: _Optional[_Iterable[int]] = ..., dead: _Optional[_Iterable[int]] = ...) -> None: ...

class RevealedShare(_message.Message):
    __slots__ = ("owner", "share")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    owner: int
    share: bytes
    def __init__(self, owner: _Optional[int] = ..., share: _Optional[bytes] = ...) -> None: ...

class UnmaskingResponse(_message.Message):
    __slots__ = ("session_id", "sender", "self_seed_shares", "mask_key_shares")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SELF_SEED_SHARES_FIELD_NUMBER: _ClassVar[int]
    MASK_KEY_SHARES_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    self_seed_shares: _containers.RepeatedCompositeFieldContainer[RevealedShare]
    mask_key_shares: _containers.RepeatedCompositeFieldContainer[RevealedShare]
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., self_seed_shares: _Optional[_Iterable[_Union[RevealedShare, _Mapping]]] = ..., mask_key_shares: _Optional[_Iterable[_Union[RevealedShare, _Mapping]]] = ...) -> None: ...

class Abort(_message.Message):
    __slots__ = ("session_id", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    reason: str
    def __init__(self, session_id: _Optional[bytes] = ..., reason: _Optional[str] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("round_config", "share_keys_request", "masked_input_request", "consistency_request", "unmasking_request", "abort")
    ROUND_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SHARE_KEYS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    MASKED_INPUT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_REQUEST_FIELD_NUMBER: _ClassVar[int]
    UNMASKING_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    round_config: SignedRoundConfig
    share_keys_request: ShareKeysRequest
    masked_input_request: MaskedInputRequest
    consistency_request: ConsistencyRequest
    unmasking_request: UnmaskingRequest
    abort: Abort
    def __init__(self, round_config: _Optional[_Union[SignedRoundConfig, _Mapping]] = ..., share_keys_request: _Optional[_Union[ShareKeysRequest, _Mapping]] = ..., masked_input_request: _Optional[_Union[MaskedInputRequest, _Mapping]] = ..., consistency_request: _Optional[_Union[ConsistencyRequest, _Mapping]] = ..., unmasking_request: _Optional[_Union[UnmaskingRequest, _Mapping]] = ..., abort: _Optional[_Union[Abort, _Mapping]] = ...) -> None: ...

class ClientMessage(_message.Message):
    __slots__ = ("advertise_keys", "share_keys", "masked_input", "consistency_signature", "unmasking_response", "abort")
    ADVERTISE_KEYS_FIELD_NUMBER: _ClassVar[int]
    SHARE_KEYS_FIELD_NUMBER: _ClassVar[int]
    MASKED_INPUT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    UNMASKING_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    advertise_keys: AdvertiseKeys
    share_keys: ShareKeys
    masked_input: MaskedInput
    consistency_signature: ConsistencySignature
    unmasking_response: UnmaskingResponse
    abort: Abort
    def __init__(self, advertise_keys: _Optional[_Union[AdvertiseKeys, _Mapping]] = ..., share_keys: _Optional[_Union[ShareKeys, _Mapping]] = ..., masked_input: _Optional[_Union[MaskedInput, _Mapping]] = ..., consistency_signature: _Optional[_Union[ConsistencySignature, _Mapping]] = ..., unmasking_response: _Optional[_Union[UnmaskingResponse, _Mapping]] = ..., abort: _Optional[_Union[Abort, _Mapping]] = ...) -> None: ...
