"""Local data for a node: the demo data sets, their non-IID splits, and local files.

Demo data sets (shipped inside scikit-learn, so they work offline):

- ``"digits"``: 1797 x 64 pixel intensities in 0..16, scaled to [0, 1] by dividing by 16;
  10 classes. The scaling is a fixed constant, so it leaks nothing about any split.
- ``"breast_cancer"``: 569 x 30 real-valued features, 2 classes. The features have very
  different ranges and must be standardised, but the mean/std must come from the
  *training* part only (otherwise the held-out test set leaks into training). So
  :func:`load_dataset` returns the raw features with ``standardize=True``, and
  :func:`split_holdout` fits mean/std on the training part and applies them to both
  parts (the returned parts carry the fitted ``feature_mean``/``feature_std``).

Splits across "institutions": :func:`dirichlet_partition` (label skew, for digits) and
:func:`quantity_skew_partition` (size skew, for breast_cancer).

Local files (what a deployed node reads): :func:`load_local_data` accepts an NPZ with
arrays ``X`` and ``y`` or a CSV with a header row; :func:`save_partition_npz` writes the
NPZ form. Every validation error is a :class:`DataError` naming the file and the problem.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

__all__ = [
    "DATASET_NAMES",
    "DataError",
    "Dataset",
    "dirichlet_partition",
    "load_dataset",
    "load_local_data",
    "quantity_skew_partition",
    "save_partition_npz",
    "split_holdout",
]

DATASET_NAMES: tuple[str, ...] = ("digits", "breast_cancer")

# Resampling attempts before a partition request is declared infeasible.
_MAX_PARTITION_ATTEMPTS = 1000


class DataError(ValueError):
    """A data set, split or local data file is unusable; the message says why."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features and labels of one data set (or one part of it).

    ``X`` is float32 of shape (n, d), ``y`` int64 of shape (n,) with values in
    ``[0, n_classes)``. Both arrays are read-only. ``standardize`` means the features are
    still raw and :func:`split_holdout` will standardise them with training statistics;
    ``feature_mean``/``feature_std`` are those statistics once fitted.
    """

    X: np.ndarray
    y: np.ndarray
    n_classes: int
    name: str = ""
    feature_names: tuple[str, ...] | None = None
    standardize: bool = False
    feature_mean: np.ndarray | None = None
    feature_std: np.ndarray | None = None

    def __post_init__(self) -> None:
        X = np.asarray(self.X)
        y = np.asarray(self.y)
        if X.ndim != 2:
            raise DataError(f"Dataset {self.name!r}: X must be 2-D, got shape {X.shape}")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise DataError(
                f"Dataset {self.name!r}: y must be 1-D with {X.shape[0]} rows, got {y.shape}"
            )
        if self.n_classes < 2:
            raise DataError(f"Dataset {self.name!r}: n_classes must be >= 2")
        if y.size and (y.min() < 0 or y.max() >= self.n_classes):
            raise DataError(f"Dataset {self.name!r}: labels must lie in [0, {self.n_classes})")
        if self.feature_names is not None and len(self.feature_names) != X.shape[1]:
            raise DataError(f"Dataset {self.name!r}: {X.shape[1]} features but names differ")
        object.__setattr__(self, "X", _readonly(np.array(X, dtype=np.float32)))
        object.__setattr__(self, "y", _readonly(np.array(y, dtype=np.int64)))

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def subset(self, indices: np.ndarray) -> Dataset:
        """The rows at ``indices``, with everything else unchanged."""
        idx = np.asarray(indices, dtype=np.int64)
        return replace(self, X=self.X[idx], y=self.y[idx])


def load_dataset(name: str) -> Dataset:
    """Load a demo data set by name (see the module docstring for the scaling)."""
    # Imported lazily: scikit-learn is only needed for the demo data sets.
    from sklearn.datasets import load_breast_cancer, load_digits

    if name == "digits":
        raw = load_digits()
        return Dataset(
            X=raw.data.astype(np.float32) / np.float32(16.0),
            y=raw.target,
            n_classes=10,
            name=name,
            feature_names=tuple(str(f) for f in raw.feature_names),
        )
    if name == "breast_cancer":
        raw = load_breast_cancer()
        return Dataset(
            X=raw.data,
            y=raw.target,
            n_classes=2,
            name=name,
            feature_names=tuple(str(f) for f in raw.feature_names),
            standardize=True,
        )
    raise DataError(f"unknown data set {name!r}; allowed values: {', '.join(DATASET_NAMES)}")


def split_holdout(
    dataset: Dataset, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """Stratified train/test split; standardises with training statistics if required.

    Deterministic given ``seed`` (a demo data split, not privacy-relevant randomness).
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    indices = np.arange(dataset.n_rows)
    try:
        train_idx, test_idx = train_test_split(
            indices, test_size=test_fraction, random_state=seed, stratify=dataset.y
        )
    except ValueError as exc:
        raise DataError(f"cannot split {dataset.name!r} {test_fraction=}: {exc}") from exc
    train = dataset.subset(np.sort(train_idx))
    test = dataset.subset(np.sort(test_idx))
    if not dataset.standardize:
        return train, test
    mean = train.X.astype(np.float64).mean(axis=0)
    std = train.X.astype(np.float64).std(axis=0)
    std[std == 0.0] = 1.0  # a constant feature stays constant (at 0)

    def standardised(part: Dataset) -> Dataset:
        return replace(
            part,
            X=(part.X - mean) / std,
            standardize=False,
            feature_mean=_readonly(mean.copy()),
            feature_std=_readonly(std.copy()),
        )

    return standardised(train), standardised(test)


# --------------------------------------------------------------------------- partitions
#
# The randomness below only decides how a demo data set is split into "institutions".
# It is not privacy-relevant (no mask, no noise), so numpy's seeded default_rng is fine
# here, and a seed makes the split reproducible across processes.


def _check_partition_args(n_rows: int, n_parts: int, alpha: float, min_size: int) -> None:
    if n_parts < 1:
        raise DataError(f"n_parts must be >= 1, got {n_parts}")
    if not (alpha > 0.0 and math.isfinite(alpha)):
        raise DataError(f"alpha must be a positive finite number, got {alpha}")
    if min_size < 0:
        raise DataError(f"min_size must be >= 0, got {min_size}")
    if n_parts * min_size > n_rows:
        raise DataError(
            f"cannot give {n_parts} parts at least {min_size} rows each from {n_rows} rows"
        )


def _cut(indices: np.ndarray, proportions: np.ndarray) -> list[np.ndarray]:
    """Split ``indices`` into consecutive pieces with sizes proportional to ``proportions``."""
    cuts = (np.cumsum(proportions)[:-1] * len(indices)).astype(np.int64)
    return np.split(indices, cuts)


def dirichlet_partition(
    y: np.ndarray,
    n_parts: int,
    alpha: float = 0.5,
    seed: int = 0,
    min_size: int = 10,
) -> list[np.ndarray]:
    """Label-skew non-IID split of the rows of ``y`` into ``n_parts`` index arrays.

    For each class, proportions over the parts are drawn from Dirichlet(alpha, ..., alpha)
    and the (shuffled) rows of that class are cut accordingly. Small alpha gives parts
    dominated by few labels; large alpha approaches an IID split. The whole draw is
    repeated until every part has at least ``min_size`` rows. Every row appears in exactly
    one part; each part's indices are sorted. Deterministic given ``seed``.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise DataError(f"y must be 1-D, got shape {labels.shape}")
    n_rows = labels.shape[0]
    _check_partition_args(n_rows, n_parts, alpha, min_size)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    by_class = [np.flatnonzero(labels == c) for c in classes]
    for _ in range(_MAX_PARTITION_ATTEMPTS):
        pieces: list[list[np.ndarray]] = [[] for _ in range(n_parts)]
        for rows in by_class:
            proportions = rng.dirichlet(np.full(n_parts, alpha))
            for part, piece in zip(pieces, _cut(rng.permutation(rows), proportions), strict=True):
                part.append(piece)
        parts = [np.sort(np.concatenate(p)).astype(np.int64) for p in pieces]
        if min(len(p) for p in parts) >= min_size:
            return parts
    raise DataError(
        f"no Dirichlet(alpha={alpha}) split into {n_parts} parts with >= {min_size} rows "
        f"each after {_MAX_PARTITION_ATTEMPTS} attempts; raise alpha or lower min_size"
    )


def quantity_skew_partition(
    n_rows: int,
    n_parts: int,
    alpha: float = 0.5,
    seed: int = 0,
    min_size: int = 10,
) -> list[np.ndarray]:
    """Size-skew split of ``range(n_rows)``: part sizes ~ Dirichlet(alpha), rows shuffled.

    Labels are not looked at, so each part's label mix follows the data set's. Resampled
    until every part has at least ``min_size`` rows; sorted indices; deterministic given
    ``seed``.
    """
    _check_partition_args(n_rows, n_parts, alpha, min_size)
    rng = np.random.default_rng(seed)
    for _ in range(_MAX_PARTITION_ATTEMPTS):
        proportions = rng.dirichlet(np.full(n_parts, alpha))
        parts = [np.sort(p) for p in _cut(rng.permutation(n_rows).astype(np.int64), proportions)]
        if min(len(p) for p in parts) >= min_size:
            return parts
    raise DataError(
        f"no Dirichlet(alpha={alpha}) size split of {n_rows} rows into {n_parts} parts with "
        f">= {min_size} rows each after {_MAX_PARTITION_ATTEMPTS} attempts"
    )


# --------------------------------------------------------------------------- local files


def save_partition_npz(path: str | os.PathLike[str], X: np.ndarray, y: np.ndarray) -> Path:
    """Write ``X`` (float32) and ``y`` (int64) to an NPZ file, atomically. Returns the path."""
    target = Path(path)
    X_arr = np.asarray(X, dtype=np.float32)
    y_arr = np.asarray(y, dtype=np.int64)
    if X_arr.ndim != 2 or y_arr.ndim != 1 or X_arr.shape[0] != y_arr.shape[0]:
        raise DataError(
            f"{target}: need X of shape (n, d) and y of shape (n,), got {X_arr.shape} "
            f"and {y_arr.shape}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, X=X_arr, y=y_arr)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_local_data(
    path: str | os.PathLike[str],
    *,
    label_column: str = "label",
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a node's local data: ``(X float32 (n, d), y int64 (n,))``.

    ``.npz``: arrays ``X`` and ``y``. Anything else is read as CSV: a header row, the label
    in column ``label_column`` (default ``"label"``), every other column a numeric feature.
    Labels must be integers in ``[0, n_classes)`` (``n_classes`` None: non-negative
    integers). Raises :class:`DataError` naming the file and the problem.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    if p.suffix.lower() == ".npz":
        X, y = _read_npz(p)
        lines, columns = None, None
    else:
        X, y, lines, columns = _read_csv(p, label_column)
    return _validate(p, X, y, n_classes, lines, columns)


def _read_npz(p: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(p, allow_pickle=False) as npz:
            missing = [k for k in ("X", "y") if k not in npz.files]
            if missing:
                raise DataError(
                    f"{p}: missing array(s) {', '.join(missing)} (found: {', '.join(npz.files)})"
                )
            X, y = npz["X"], npz["y"]
    except DataError:
        raise
    except (OSError, ValueError) as exc:  # not a zip, pickled objects, corrupt member
        raise DataError(f"{p}: not a readable NPZ file ({exc})") from exc
    if X.ndim != 2:
        raise DataError(f"{p}: X must be 2-D (rows x features), got shape {X.shape}")
    if y.ndim != 1:
        raise DataError(f"{p}: y must be 1-D, got shape {y.shape}")
    for key, arr in (("X", X), ("y", y)):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise DataError(f"{p}: array {key} is not numeric (dtype {arr.dtype})")
        if np.issubdtype(arr.dtype, np.complexfloating):
            raise DataError(f"{p}: array {key} is complex")
    return X.astype(np.float64), y


def _read_csv(p: Path, label_column: str) -> tuple[np.ndarray, np.ndarray, list[int], list[str]]:
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{p}: cannot read as CSV ({exc})") from exc
    if not rows:
        raise DataError(f"{p}: empty file (no header row)")
    header = [h.strip() for h in rows[0]]
    if label_column not in header:
        raise DataError(
            f"{p}: missing label column {label_column!r} (columns: {', '.join(header)})"
        )
    if header.count(label_column) > 1:
        raise DataError(f"{p}: label column {label_column!r} appears more than once")
    label_at = header.index(label_column)
    feature_at = [i for i in range(len(header)) if i != label_at]
    if not feature_at:
        raise DataError(f"{p}: no feature columns besides {label_column!r}")
    # Line numbers as an editor shows them (header = line 1); skip blank lines.
    body = [(line, r) for line, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    if not body:
        raise DataError(f"{p}: no data rows after the header")
    values = np.empty((len(body), len(header)), dtype=np.float64)
    for i, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{p}: line {line} has {len(row)} cells, the header has {len(header)}")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise DataError(
                    f"{p}: line {line}, column {header[j]!r}: non-numeric value {cell.strip()!r}"
                ) from None
    lines = [line for line, _ in body]
    return values[:, feature_at], values[:, label_at], lines, [header[i] for i in feature_at]


def _validate(
    p: Path,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int | None,
    lines: list[int] | None,
    columns: list[str] | None,
) -> tuple[np.ndarray, np.ndarray]:
    def where(r: int) -> str:
        return f"line {lines[r]}" if lines is not None else f"row {r}"

    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{p}: empty data (X has shape {X.shape})")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{p}: X has {X.shape[0]} rows but y has {y.shape[0]} labels")
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        r, c = (int(v) for v in bad[0])
        raise DataError(
            f"{p}: {len(bad)} non-finite feature value(s) (NaN/inf), first at "
            f"{where(r)}, column {columns[c] if columns is not None else c!r}: {X[r, c]}"
        )
    y_float = y.astype(np.float64)
    checks: list[tuple[np.ndarray, str]] = [
        (~np.isfinite(y_float), "not finite (NaN/inf)"),
        (np.isfinite(y_float) & (y_float != np.round(y_float)), "not an integer"),
        (y_float < 0, "negative"),
    ]
    if n_classes is not None:
        checks.append((y_float >= n_classes, f"not below n_classes={n_classes}"))
    for mask, problem in checks:
        if mask.any():
            r = int(np.flatnonzero(mask)[0])
            raise DataError(
                f"{p}: {int(mask.sum())} label(s) {problem}; labels must be integers in "
                f"[0, {n_classes if n_classes is not None else 'n_classes'}); "
                f"first at {where(r)}: {y[r]}"
            )
    return X.astype(np.float32), y_float.astype(np.int64)
