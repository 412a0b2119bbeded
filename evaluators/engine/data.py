"""Evaluation dataset loading and column validation."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evaluators.engine import EvaluationError

SUPPORTED_SUFFIXES = (".csv", ".jsonl", ".parquet")
MISSING_GROUP = "(missing)"


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    sha256: str


def load_table(path: Path) -> pd.DataFrame:
    """Read a `.csv`, `.jsonl` or `.parquet` file into a DataFrame."""
    return read_table(path).frame


def read_table(path: Path) -> Table:
    """Read a table and the SHA-256 of the exact bytes parsed.

    The file is read once into memory and parsed from there, so the digest always describes
    what was evaluated even if the file changes on disk meanwhile.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise EvaluationError(
            f"Unsupported dataset format {path.suffix or '(no suffix)'!r} for {path.name}: "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}."
        )
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise EvaluationError(f"Dataset file {path} does not exist.") from None
    except OSError as exc:
        raise EvaluationError(f"Dataset file {path} cannot be read: {exc.strerror}.") from None
    try:
        frame = _parse(suffix, raw)
    except ValueError as exc:  # pandas' and pyarrow's parse errors all derive from it
        raise EvaluationError(
            f"Dataset file {path.name} is not valid {suffix[1:]}: {exc}"
        ) from None
    return Table(frame=frame, sha256=hashlib.sha256(raw).hexdigest())


def _parse(suffix: str, raw: bytes) -> pd.DataFrame:
    if suffix == ".csv":
        # keep_default_na=False keeps strings such as "NA" (a region code) as text;
        # only truly empty cells count as missing.
        return pd.read_csv(io.BytesIO(raw), keep_default_na=False, na_values=[""])
    if suffix == ".jsonl":
        return _parse_jsonl(raw)
    return pd.read_parquet(io.BytesIO(raw), engine="pyarrow")


def _parse_jsonl(raw: bytes) -> pd.DataFrame:
    # Parsed by hand rather than with pandas.read_json: no dtype or date guessing, and errors
    # that name the line.
    rows = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: {exc.msg}") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {number} is not a JSON object")
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, source: str) -> None:
    """Raise naming every requested column that the table lacks."""
    wanted = list(dict.fromkeys(columns))
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        raise EvaluationError(
            f"{source} has no column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (it has {len(frame.columns)}); check the "
            "suite's column names against the file's header. The file's own columns are not "
            "listed, so an error never shows data its reader may not see."
        )


@dataclass(frozen=True)
class EvaluationData:
    # Texts for text classification; {feature column: float} rows for tabular classification.
    inputs: list[Any]
    labels: list[str]
    sensitive: pd.DataFrame
    sha256: str


def prepare_dataset(
    path: Path,
    *,
    input_column: str | None = None,
    label_column: str,
    sensitive_columns: list[str],
    feature_columns: list[str] | None = None,
) -> EvaluationData:
    """Load a dataset and check it is usable for an evaluation.

    Give `input_column` (a text column) or `feature_columns` (numeric columns, for tabular
    classification), not both. Labels and sensitive attributes are compared and reported as
    strings (they become JSON keys); missing sensitive values form their own group rather
    than being dropped.
    """
    if (input_column is None) == (not feature_columns):
        raise EvaluationError("Name either an input column (text) or feature columns (tabular).")
    inputs_named = [input_column] if input_column is not None else list(feature_columns or [])
    table = read_table(path)
    frame = table.frame
    source = f"Dataset {Path(path).name}"
    require_columns(frame, [*inputs_named, label_column, *sensitive_columns], source=source)
    if frame.empty:
        raise EvaluationError(f"{source} has no rows.")
    for column in (*inputs_named, label_column):
        empty_rows = frame.index[frame[column].isna()].tolist()
        if empty_rows:
            raise EvaluationError(
                f"{source}: column {column!r} is empty in {len(empty_rows)} row(s) "
                f"(first at row {empty_rows[0] + 1}); every row needs an input and a label."
            )
    sensitive = pd.DataFrame(
        {
            column: frame[column].map(lambda v: MISSING_GROUP if pd.isna(v) else _as_text(v))
            for column in sensitive_columns
        },
        index=range(len(frame)),
    )
    return EvaluationData(
        inputs=(
            [str(v) for v in frame[input_column]]
            if input_column is not None
            else _feature_rows(frame, list(feature_columns or []), source)
        ),
        labels=[_as_text(v) for v in frame[label_column]],
        sensitive=sensitive,
        sha256=table.sha256,
    )


def _feature_rows(frame: pd.DataFrame, columns: list[str], source: str) -> list[dict[str, float]]:
    """Each row's features as floats; a value that is not a number is refused, by row."""
    numbers = {}
    for column in columns:
        values = frame[column]
        if values.dtype == bool:
            values = values.astype(float)
        converted = pd.to_numeric(values, errors="coerce")
        bad = frame.index[converted.isna()].tolist()
        if bad:
            raise EvaluationError(
                f"{source}: feature column {column!r} holds {frame[column].iloc[bad[0]]!r} in "
                f"row {bad[0] + 1}, not a number; tabular features must be numeric (encode "
                "categories as numbers or one-hot columns)."
            )
        numbers[column] = converted.astype(float).tolist()
    return [{column: numbers[column][row] for column in columns} for row in range(len(frame))]


def _as_text(value: object) -> str:
    # 1.0 read from a float column is the label "1", not "1.0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
