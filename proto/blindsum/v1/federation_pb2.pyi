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
    __slots__ = ("round", "secagg", "result", "shutdown")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SECAGG_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    round: int
    secagg: bytes
    result: RoundResult
    shutdown: Shutdown
    def __init__(self, round: _Optional[int] = ..., secagg: _Optional[bytes] = ..., result: _Optional[_Union[RoundResult, _Mapping]] = ..., shutdown: _Optional[_Union[Shutdown, _Mapping]] = ...) -> None: ...

class RoundResult(_message.Message):
    __slots__ = ("round", "released", "contributors", "abort_reason", "accuracy")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    ABORT_REASON_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    round: int
    released: bool
    contributors: _containers.RepeatedScalarFieldContainer[int]
    abort_reason: str
    accuracy: float
    def __init__(self, round: _Optional[int] = ..., released: _Optional[bool] = ..., contributors: _Optional[_Iterable[int]] = ..., abort_reason: _Optional[str] = ..., accuracy: _Optional[float] = ...) -> None: ...

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
    __slots__ = ("round", "secagg")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SECAGG_FIELD_NUMBER: _ClassVar[int]
    round: int
    secagg: bytes
    def __init__(self, round: _Optional[int] = ..., secagg: _Optional[bytes] = ...) -> None: ...

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
