from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RoundApplication(_message.Message):
    __slots__ = ("round", "model_digest", "model_bytes", "rotation_seed", "ddg", "training")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MODEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    ROTATION_SEED_FIELD_NUMBER: _ClassVar[int]
    DDG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    round: int
    model_digest: bytes
    model_bytes: int
    rotation_seed: bytes
    ddg: DdgParameters
    training: TrainingParameters
    def __init__(self, round: _Optional[int] = ..., model_digest: _Optional[bytes] = ..., model_bytes: _Optional[int] = ..., rotation_seed: _Optional[bytes] = ..., ddg: _Optional[_Union[DdgParameters, _Mapping]] = ..., training: _Optional[_Union[TrainingParameters, _Mapping]] = ...) -> None: ...

class DdgParameters(_message.Message):
    __slots__ = ("clip", "bits", "gamma", "sigma", "clients", "dim", "beta", "wrap_prob", "delta")
    CLIP_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    WRAP_PROB_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    clip: float
    bits: int
    gamma: float
    sigma: float
    clients: int
    dim: int
    beta: float
    wrap_prob: float
    delta: float
    def __init__(self, clip: _Optional[float] = ..., bits: _Optional[int] = ..., gamma: _Optional[float] = ..., sigma: _Optional[float] = ..., clients: _Optional[int] = ..., dim: _Optional[int] = ..., beta: _Optional[float] = ..., wrap_prob: _Optional[float] = ..., delta: _Optional[float] = ...) -> None: ...

class TrainingParameters(_message.Message):
    __slots__ = ("epochs", "learning_rate", "batch_size")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    learning_rate: float
    batch_size: int
    def __init__(self, epochs: _Optional[int] = ..., learning_rate: _Optional[float] = ..., batch_size: _Optional[int] = ...) -> None: ...

class AggregatorEvent(_message.Message):
    __slots__ = ("round", "secagg", "result", "shutdown", "ckks")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SECAGG_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    CKKS_FIELD_NUMBER: _ClassVar[int]
    round: int
    secagg: bytes
    result: RoundResult
    shutdown: Shutdown
    ckks: CkksEvent
    def __init__(self, round: _Optional[int] = ..., secagg: _Optional[bytes] = ..., result: _Optional[_Union[RoundResult, _Mapping]] = ..., shutdown: _Optional[_Union[Shutdown, _Mapping]] = ..., ckks: _Optional[_Union[CkksEvent, _Mapping]] = ...) -> None: ...

class RoundResult(_message.Message):
    __slots__ = ("round", "released", "contributors", "abort_reason", "accuracy", "attestations")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    ABORT_REASON_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    ATTESTATIONS_FIELD_NUMBER: _ClassVar[int]
    round: int
    released: bool
    contributors: _containers.RepeatedScalarFieldContainer[int]
    abort_reason: str
    accuracy: float
    attestations: _containers.RepeatedCompositeFieldContainer[CkksSumAttestation]
    def __init__(self, round: _Optional[int] = ..., released: _Optional[bool] = ..., contributors: _Optional[_Iterable[int]] = ..., abort_reason: _Optional[str] = ..., accuracy: _Optional[float] = ..., attestations: _Optional[_Iterable[_Union[CkksSumAttestation, _Mapping]]] = ...) -> None: ...

class Shutdown(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("federation",)
    FEDERATION_FIELD_NUMBER: _ClassVar[int]
    federation: str
    def __init__(self, federation: _Optional[str] = ...) -> None: ...

class NodeMessage(_message.Message):
    __slots__ = ("round", "secagg", "ckks")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SECAGG_FIELD_NUMBER: _ClassVar[int]
    CKKS_FIELD_NUMBER: _ClassVar[int]
    round: int
    secagg: bytes
    ckks: CkksNodeMessage
    def __init__(self, round: _Optional[int] = ..., secagg: _Optional[bytes] = ..., ckks: _Optional[_Union[CkksNodeMessage, _Mapping]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("accepted", "detail")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    detail: str
    def __init__(self, accepted: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class VectorChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: VectorHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[VectorHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class VectorHeader(_message.Message):
    __slots__ = ("round", "session_id", "total_bytes", "sha256")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    round: int
    session_id: bytes
    total_bytes: int
    sha256: bytes
    def __init__(self, round: _Optional[int] = ..., session_id: _Optional[bytes] = ..., total_bytes: _Optional[int] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class ModelRequest(_message.Message):
    __slots__ = ("round",)
    ROUND_FIELD_NUMBER: _ClassVar[int]
    round: int
    def __init__(self, round: _Optional[int] = ...) -> None: ...

class CkksParameters(_message.Message):
    __slots__ = ("poly_modulus_degree", "coeff_mod_bit_sizes", "scale_bits", "bits", "max_clients")
    POLY_MODULUS_DEGREE_FIELD_NUMBER: _ClassVar[int]
    COEFF_MOD_BIT_SIZES_FIELD_NUMBER: _ClassVar[int]
    SCALE_BITS_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    MAX_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    poly_modulus_degree: int
    coeff_mod_bit_sizes: _containers.RepeatedScalarFieldContainer[int]
    scale_bits: int
    bits: int
    max_clients: int
    def __init__(self, poly_modulus_degree: _Optional[int] = ..., coeff_mod_bit_sizes: _Optional[_Iterable[int]] = ..., scale_bits: _Optional[int] = ..., bits: _Optional[int] = ..., max_clients: _Optional[int] = ...) -> None: ...

class CkksAnnouncement(_message.Message):
    __slots__ = ("federation", "run_id", "lead", "parameters", "public_context", "signature")
    FEDERATION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    federation: str
    run_id: bytes
    lead: int
    parameters: CkksParameters
    public_context: bytes
    signature: bytes
    def __init__(self, federation: _Optional[str] = ..., run_id: _Optional[bytes] = ..., lead: _Optional[int] = ..., parameters: _Optional[_Union[CkksParameters, _Mapping]] = ..., public_context: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CkksEnrolment(_message.Message):
    __slots__ = ("federation", "run_id", "member", "agreement_public", "signature")
    FEDERATION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    federation: str
    run_id: bytes
    member: int
    agreement_public: bytes
    signature: bytes
    def __init__(self, federation: _Optional[str] = ..., run_id: _Optional[bytes] = ..., member: _Optional[int] = ..., agreement_public: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CkksSealedContext(_message.Message):
    __slots__ = ("federation", "run_id", "lead", "member", "member_agreement_public", "ephemeral_public", "public_context_digest", "ciphertext", "signature")
    FEDERATION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_AGREEMENT_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    federation: str
    run_id: bytes
    lead: int
    member: int
    member_agreement_public: bytes
    ephemeral_public: bytes
    public_context_digest: bytes
    ciphertext: bytes
    signature: bytes
    def __init__(self, federation: _Optional[str] = ..., run_id: _Optional[bytes] = ..., lead: _Optional[int] = ..., member: _Optional[int] = ..., member_agreement_public: _Optional[bytes] = ..., ephemeral_public: _Optional[bytes] = ..., public_context_digest: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CkksUploadReceipt(_message.Message):
    __slots__ = ("federation", "run_id", "round", "participant", "chunks", "upload_digest", "signature")
    FEDERATION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    federation: str
    run_id: bytes
    round: int
    participant: int
    chunks: int
    upload_digest: bytes
    signature: bytes
    def __init__(self, federation: _Optional[str] = ..., run_id: _Optional[bytes] = ..., round: _Optional[int] = ..., participant: _Optional[int] = ..., chunks: _Optional[int] = ..., upload_digest: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CkksSumAttestation(_message.Message):
    __slots__ = ("federation", "run_id", "round", "member", "contributors", "ciphertext_digest", "sum_digest", "signature")
    FEDERATION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SUM_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    federation: str
    run_id: bytes
    round: int
    member: int
    contributors: _containers.RepeatedScalarFieldContainer[int]
    ciphertext_digest: bytes
    sum_digest: bytes
    signature: bytes
    def __init__(self, federation: _Optional[str] = ..., run_id: _Optional[bytes] = ..., round: _Optional[int] = ..., member: _Optional[int] = ..., contributors: _Optional[_Iterable[int]] = ..., ciphertext_digest: _Optional[bytes] = ..., sum_digest: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CkksRunSetup(_message.Message):
    __slots__ = ("run_id", "committee", "max_clients", "bits")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    COMMITTEE_FIELD_NUMBER: _ClassVar[int]
    MAX_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    run_id: bytes
    committee: _containers.RepeatedScalarFieldContainer[int]
    max_clients: int
    bits: int
    def __init__(self, run_id: _Optional[bytes] = ..., committee: _Optional[_Iterable[int]] = ..., max_clients: _Optional[int] = ..., bits: _Optional[int] = ...) -> None: ...

class CkksEnrolments(_message.Message):
    __slots__ = ("enrolments",)
    ENROLMENTS_FIELD_NUMBER: _ClassVar[int]
    enrolments: _containers.RepeatedCompositeFieldContainer[CkksEnrolment]
    def __init__(self, enrolments: _Optional[_Iterable[_Union[CkksEnrolment, _Mapping]]] = ...) -> None: ...

class CkksContextDelivery(_message.Message):
    __slots__ = ("announcement", "sealed")
    ANNOUNCEMENT_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    announcement: CkksAnnouncement
    sealed: CkksSealedContext
    def __init__(self, announcement: _Optional[_Union[CkksAnnouncement, _Mapping]] = ..., sealed: _Optional[_Union[CkksSealedContext, _Mapping]] = ...) -> None: ...

class CkksRoundConfig(_message.Message):
    __slots__ = ("run_id", "application", "signature")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    run_id: bytes
    application: bytes
    signature: bytes
    def __init__(self, run_id: _Optional[bytes] = ..., application: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CkksDecryptRequest(_message.Message):
    __slots__ = ("receipts", "chunk_bytes", "ciphertext_digest", "upload_sum")
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_SUM_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[CkksUploadReceipt]
    chunk_bytes: _containers.RepeatedScalarFieldContainer[int]
    ciphertext_digest: bytes
    upload_sum: bool
    def __init__(self, receipts: _Optional[_Iterable[_Union[CkksUploadReceipt, _Mapping]]] = ..., chunk_bytes: _Optional[_Iterable[int]] = ..., ciphertext_digest: _Optional[bytes] = ..., upload_sum: _Optional[bool] = ...) -> None: ...

class CkksEvent(_message.Message):
    __slots__ = ("setup", "enrolments", "context", "round_config", "decrypt")
    SETUP_FIELD_NUMBER: _ClassVar[int]
    ENROLMENTS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ROUND_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DECRYPT_FIELD_NUMBER: _ClassVar[int]
    setup: CkksRunSetup
    enrolments: CkksEnrolments
    context: CkksContextDelivery
    round_config: CkksRoundConfig
    decrypt: CkksDecryptRequest
    def __init__(self, setup: _Optional[_Union[CkksRunSetup, _Mapping]] = ..., enrolments: _Optional[_Union[CkksEnrolments, _Mapping]] = ..., context: _Optional[_Union[CkksContextDelivery, _Mapping]] = ..., round_config: _Optional[_Union[CkksRoundConfig, _Mapping]] = ..., decrypt: _Optional[_Union[CkksDecryptRequest, _Mapping]] = ...) -> None: ...

class CkksContextRelease(_message.Message):
    __slots__ = ("announcement", "sealed")
    ANNOUNCEMENT_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    announcement: CkksAnnouncement
    sealed: _containers.RepeatedCompositeFieldContainer[CkksSealedContext]
    def __init__(self, announcement: _Optional[_Union[CkksAnnouncement, _Mapping]] = ..., sealed: _Optional[_Iterable[_Union[CkksSealedContext, _Mapping]]] = ...) -> None: ...

class CkksNodeMessage(_message.Message):
    __slots__ = ("enrolment", "release", "ready", "refusal", "attestation")
    ENROLMENT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    enrolment: CkksEnrolment
    release: CkksContextRelease
    ready: bool
    refusal: str
    attestation: CkksSumAttestation
    def __init__(self, enrolment: _Optional[_Union[CkksEnrolment, _Mapping]] = ..., release: _Optional[_Union[CkksContextRelease, _Mapping]] = ..., ready: _Optional[bool] = ..., refusal: _Optional[str] = ..., attestation: _Optional[_Union[CkksSumAttestation, _Mapping]] = ...) -> None: ...

class CiphertextUpload(_message.Message):
    __slots__ = ("header", "chunk", "receipt")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    header: VectorHeader
    chunk: bytes
    receipt: CkksUploadReceipt
    def __init__(self, header: _Optional[_Union[VectorHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ..., receipt: _Optional[_Union[CkksUploadReceipt, _Mapping]] = ...) -> None: ...
