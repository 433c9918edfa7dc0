"""Local training on a node (torch), and the model <-> flat vector bridge.

A node trains a copy of the global model on its local data and hands back the update
``delta = trained - initial`` as one flat float64 vector; that vector is what the DP
encoder (``dp``) and secure aggregation (``secagg``) work on. This module never imports
either of them.

The flat order of the parameters is ``model.named_parameters()`` order, which is fixed by
the model's construction in :func:`make_model`. :func:`model_digest` binds the values and
that layout (names, shapes) so the aggregator can sign which model a round starts from.

:func:`fedavg_baseline` is the non-private reference: plain FedAvg, computed in-process on
the same split, for the demo to show next to the private run.
"""

from __future__ import annotations

import copy
import hashlib
import os
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "MODEL_KINDS",
    "TrainingError",
    "apply_update",
    "assign_parameters",
    "configure_torch",
    "evaluate",
    "fedavg_baseline",
    "flatten_parameters",
    "load_model",
    "make_model",
    "model_digest",
    "parameter_count",
    "save_model",
    "train_local",
]

MODEL_KINDS: tuple[str, ...] = ("logreg", "mlp")
MLP_HIDDEN = 32
_DIGEST_DOMAIN = b"blindsum.model_digest.v1\x00"


class TrainingError(ValueError):
    """A model, update or training input is unusable; the message says why."""


def configure_torch() -> str:
    """Set up torch for a node process (one intra-op thread) and return its version.

    The models are tiny: more threads only add synchronisation overhead, and several nodes
    share a machine in the demo.
    """
    torch.set_num_threads(1)
    return str(torch.__version__)


def warm_up() -> None:
    """Pay torch's one-off first-call cost (~1 s) at start-up, not inside round 1."""
    model = make_model("logreg", 4, 2, seed=0)
    X = np.zeros((8, 4), dtype=np.float32)
    y = np.zeros(8, dtype=np.int64)
    train_local(model, X, y, epochs=1, learning_rate=0.1, batch_size=4, seed=0)


# --------------------------------------------------------------------------- models

# (n_features, n_classes) of the data sets a federation can name.
DATASET_SHAPES = {"digits": (64, 10), "breast_cancer": (30, 2)}


def model_for(settings) -> nn.Module:
    """The federation's initial global model from its [model] settings (node.config.ModelSettings)."""
    n_features, n_classes = DATASET_SHAPES[settings.dataset]
    return make_model(
        settings.kind, n_features, n_classes, seed=settings.seed, hidden=settings.hidden
    )


def make_model(
    kind: str, n_features: int, n_classes: int, *, seed: int = 0, hidden: int = MLP_HIDDEN
) -> nn.Module:
    """Build a classifier with a deterministic initialisation from ``seed``.

    ``"logreg"``: one Linear layer (multinomial logistic regression on the logits).
    ``"mlp"``: Linear(n_features, hidden) -> ReLU -> Linear(hidden, n_classes)
    (hidden = 32 by default; benchmarks widen it to reach a given dimension).
    Every weight and bias is drawn U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch's default
    range for Linear) from a ``torch.Generator`` seeded with ``seed``, so every party that
    calls this with the same arguments (and torch version) gets bit-identical parameters;
    :func:`model_digest` detects any difference. The global torch RNG is not touched.
    """
    if kind not in MODEL_KINDS:
        raise TrainingError(
            f"unknown model kind {kind!r}; allowed values: {', '.join(MODEL_KINDS)}"
        )
    if hidden < 1:
        raise TrainingError(f"hidden must be >= 1, got {hidden}")
    if n_features < 1 or n_classes < 2:
        raise TrainingError(
            f"need n_features >= 1 and n_classes >= 2, got {n_features}, {n_classes}"
        )
    # nn.Linear's constructor runs its own default init from the global RNG; fork it so
    # that draw is undone (the values are overwritten below anyway).
    with torch.random.fork_rng(devices=[]):
        if kind == "logreg":
            model: nn.Module = nn.Sequential(nn.Linear(n_features, n_classes))
        else:
            model = nn.Sequential(
                nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
            )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / float(np.sqrt(layer.in_features))
                nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return model


def parameter_count(model: nn.Module) -> int:
    """Number of scalar parameters (the length of the flat vector)."""
    return sum(p.numel() for p in model.parameters())


def flatten_parameters(model: nn.Module) -> np.ndarray:
    """All parameters as one float64 vector, in ``named_parameters()`` order."""
    with torch.no_grad():
        parts = [p.detach().reshape(-1).to(torch.float64).cpu() for p in model.parameters()]
    if not parts:
        return np.zeros(0, dtype=np.float64)
    return torch.cat(parts).numpy().copy()


def assign_parameters(model: nn.Module, vector: np.ndarray) -> None:
    """Inverse of :func:`flatten_parameters`: write ``vector`` into the model, in place.

    The vector must be 1-D, finite and exactly :func:`parameter_count` long; values are
    cast to each parameter's dtype (float32).
    """
    flat = np.asarray(vector)
    expected = parameter_count(model)
    if flat.ndim != 1 or flat.shape[0] != expected:
        raise TrainingError(
            f"parameter vector has shape {flat.shape}, the model needs ({expected},)"
        )
    if not np.issubdtype(flat.dtype, np.floating) and not np.issubdtype(flat.dtype, np.integer):
        raise TrainingError(f"parameter vector must be numeric, got dtype {flat.dtype}")
    if not np.all(np.isfinite(flat)):
        raise TrainingError("parameter vector contains NaN or inf")
    source = torch.from_numpy(np.array(flat, dtype=np.float64))
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(source[offset : offset + n].reshape(p.shape).to(p.dtype))
            offset += n


def model_digest(model: nn.Module) -> bytes:
    """SHA-256 binding the parameter layout (names, shapes) and values (float64 LE).

    Layout: a domain tag, the parameter count, then per parameter its length-prefixed
    UTF-8 name and its shape; then the flat vector as little-endian float64.
    """
    h = hashlib.sha256(_DIGEST_DOMAIN)
    named = list(model.named_parameters())
    h.update(struct.pack("<I", len(named)))
    for name, p in named:
        encoded = name.encode("utf-8")
        h.update(struct.pack("<I", len(encoded)) + encoded)
        h.update(struct.pack("<I", p.dim()) + struct.pack(f"<{p.dim()}Q", *p.shape))
    h.update(flatten_parameters(model).astype("<f8").tobytes())
    return h.digest()


# --------------------------------------------------------------------------- training


def _as_tensors(
    model: nn.Module, X: np.ndarray, y: np.ndarray, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    X_arr = np.asarray(X)
    y_arr = np.asarray(y)
    if X_arr.ndim != 2 or y_arr.ndim != 1 or X_arr.shape[0] != y_arr.shape[0]:
        raise TrainingError(
            f"{what}: need X (n, d) and y (n,), got shapes {X_arr.shape} and {y_arr.shape}"
        )
    if X_arr.shape[0] == 0:
        raise TrainingError(f"{what}: no rows")
    first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    last = next((m for m in reversed(list(model.modules())) if isinstance(m, nn.Linear)), None)
    if first is not None and X_arr.shape[1] != first.in_features:
        raise TrainingError(
            f"{what}: X has {X_arr.shape[1]} features, the model expects {first.in_features}"
        )
    if last is not None and (y_arr.min() < 0 or y_arr.max() >= last.out_features):
        raise TrainingError(f"{what}: labels must lie in [0, {last.out_features})")
    # Copies: the inputs may be read-only arrays, and torch must not alias caller memory.
    X_t = torch.from_numpy(np.array(X_arr, dtype=np.float32))
    y_t = torch.from_numpy(np.array(y_arr, dtype=np.int64))
    if not torch.isfinite(X_t).all():
        raise TrainingError(f"{what}: X contains NaN or inf")
    return X_t, y_t


def train_local(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int | None = None,
) -> np.ndarray:
    """Train a copy of ``model`` and return ``trained - initial`` as a flat float64 vector.

    Plain minibatch SGD (no momentum, no weight decay) on the mean cross-entropy, for
    ``epochs`` passes over the data, reshuffled every epoch; the last batch of an epoch
    may be smaller. ``model`` itself is not modified. The shuffling generator is seeded
    from ``os.urandom`` unless ``seed`` is given (tests, the in-process baseline).
    """
    if epochs < 1:
        raise TrainingError(f"epochs must be >= 1, got {epochs}")
    if not learning_rate > 0.0:
        raise TrainingError(f"learning_rate must be > 0, got {learning_rate}")
    if batch_size < 1:
        raise TrainingError(f"batch_size must be >= 1, got {batch_size}")
    X_t, y_t = _as_tensors(model, X, y, "train_local")
    initial = flatten_parameters(model)
    local = copy.deepcopy(model)
    local.train()
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "little") >> 1  # manual_seed takes < 2**63
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(local.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    n = X_t.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(local(X_t[batch]), y_t[batch])
            loss.backward()
            optimizer.step()
    delta = flatten_parameters(local) - initial
    if not np.all(np.isfinite(delta)):
        raise TrainingError(
            "local training diverged (NaN/inf in the update); lower the learning rate"
        )
    return delta


def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of ``model`` on ``(X, y)``, in [0, 1]."""
    X_t, y_t = _as_tensors(model, X, y, "evaluate")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            predicted = model(X_t).argmax(dim=1)
    finally:
        model.train(was_training)
    return float((predicted == y_t).to(torch.float64).mean().item())


def apply_update(
    model: nn.Module, mean_delta: np.ndarray, server_learning_rate: float = 1.0
) -> None:
    """``model += server_learning_rate * mean_delta``, in place (computed in float64)."""
    delta = np.asarray(mean_delta, dtype=np.float64)
    if delta.ndim != 1 or delta.shape[0] != parameter_count(model):
        raise TrainingError(
            f"update has shape {delta.shape}, the model needs ({parameter_count(model)},)"
        )
    assign_parameters(model, flatten_parameters(model) + server_learning_rate * delta)


def fedavg_baseline(
    partitions: Sequence[tuple[np.ndarray, np.ndarray]],
    test: tuple[np.ndarray, np.ndarray],
    *,
    kind: str,
    rounds: int,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    server_learning_rate: float = 1.0,
    seed: int = 0,
    n_classes: int | None = None,
) -> list[float]:
    """Non-private FedAvg in-process; test accuracy after each round (index 0 = initial).

    Every round each partition trains from the current global model and the global model
    moves by ``server_learning_rate`` times the unweighted mean of the deltas (the same
    aggregate the private protocol releases, minus the noise). Starts from
    ``make_model(kind, d, n_classes, seed=seed)``; shuffling seeds derive from ``seed``,
    so the result is reproducible. ``n_classes`` defaults to 1 + the largest label seen.
    """
    if not partitions:
        raise TrainingError("fedavg_baseline needs at least one partition")
    if rounds < 0:
        raise TrainingError(f"rounds must be >= 0, got {rounds}")
    X_test, y_test = test
    n_features = int(np.asarray(X_test).shape[1])
    if n_classes is None:
        n_classes = 1 + int(max(np.max(y) for _, y in [*partitions, test]))
    model = make_model(kind, n_features, n_classes, seed=seed)
    accuracies = [evaluate(model, X_test, y_test)]
    for r in range(rounds):
        deltas = [
            train_local(
                model,
                X,
                y,
                epochs=epochs,
                learning_rate=learning_rate,
                batch_size=batch_size,
                seed=(seed * 1_000_003 + r * 1009 + i) % (2**63),
            )
            for i, (X, y) in enumerate(partitions)
        ]
        apply_update(model, np.mean(deltas, axis=0), server_learning_rate)
        accuracies.append(evaluate(model, X_test, y_test))
    return accuracies


# --------------------------------------------------------------------------- persistence


def save_model(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` of the state_dict, written atomically. Returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(model.state_dict(), fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_model(
    path: str | os.PathLike[str], kind: str, n_features: int, n_classes: int
) -> nn.Module:
    """Rebuild ``make_model(kind, n_features, n_classes)`` and load saved weights into it.

    Uses ``torch.load(weights_only=True)`` (no pickled code runs) and a strict key/shape
    match; any mismatch is a :class:`TrainingError` naming the file.
    """
    source = Path(path)
    if not source.is_file():
        raise TrainingError(f"{source}: no such model file")
    model = make_model(kind, n_features, n_classes)
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable/unsafe files
        raise TrainingError(f"{source}: not a loadable weights file ({exc})") from exc
    if not isinstance(state, dict):
        raise TrainingError(f"{source}: expected a state_dict, got {type(state).__name__}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TrainingError(
            f"{source}: weights do not fit a {kind} model with {n_features} features and "
            f"{n_classes} classes ({exc})"
        ) from exc
    return model
