"""``csv``: the user's own data, read from a CSV file (or Parquet when pyarrow is installed).

Every column must be numeric, complete and non-constant, and there must be more rows than
columns. Problems are one-line :class:`~dmca_core.errors.DataError` messages naming the file, the
column and the row (the 1-based line number in the file, header = line 1). No truth is known.
A relative ``path`` is read from the working directory (not the config file's folder).
"""

from __future__ import annotations

import csv
import math
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, UsageError
from ..types import DomainData, Table

NAME = "csv"
PARAMS = ("path", "columns")


def _read_csv(path: Path) -> Table:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise DataError(f"{path}: the file is empty") from None
            if not any(header):
                raise DataError(f"{path}: line 1 is empty: the file has no header naming the columns")
            if len(header) == 1:
                # one column named with the whole line: most likely another separator
                for sep, what in ((";", ";-separated"), ("\t", "tab-separated")):
                    if sep in header[0]:
                        raise DataError(
                            f"{path}: line 1: no comma in the header line; is the file {what}? "
                            "(DMCA reads comma-separated files)"
                        )
            for i, h in enumerate(header):
                if not h:
                    raise DataError(f"{path}: line 1: column {i + 1} has no name")
            seen: set[str] = set()
            for h in header:
                if h in seen:
                    raise DataError(f"{path}: line 1: column name {h!r} appears twice; names must be unique")
                seen.add(h)
            rows: list[list[float]] = []
            for raw in reader:
                line = reader.line_num
                if not raw or all(not c.strip() for c in raw):
                    continue
                if len(raw) != len(header):
                    raise DataError(f"{path}: line {line}: {len(raw)} fields, expected {len(header)}")
                vals = []
                for name, cell in zip(header, raw, strict=True):
                    text = cell.strip()
                    if not text:
                        raise DataError(f"{path}: column {name!r}, line {line}: empty cell")
                    try:
                        x = float(text)
                    except ValueError:
                        raise DataError(
                            f"{path}: column {name!r}, line {line}: not a number: {text!r}"
                        ) from None
                    if not math.isfinite(x):
                        raise DataError(
                            f"{path}: column {name!r}, line {line}: {text!r} is not a finite number"
                        )
                    vals.append(x)
                rows.append(vals)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    return Table(header, np.array(rows, dtype=np.float64).reshape(len(rows), len(header)))


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        tbl = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"{path}: cannot read as Parquet: {exc}") from None
    cols: dict[str, np.ndarray] = {}
    for name in tbl.column_names:
        col = tbl.column(name)
        try:
            arr = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{path}: column {name!r}: not numeric (type {col.type})") from None
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise DataError(f"{path}: column {name!r}, row {bad[0] + 1}: missing or non-finite value")
        cols[name] = arr
    return Table.from_columns(cols)


# the last file read, by resolved path, with its (inode, size, mtime, ctime): a study's pre-flight
# check and its steps read the same file, and re-parsing a large CSV for each was most of their
# time. A file replaced or rewritten gets a new inode or ctime even where mtimes are coarse.
_last: dict[str, tuple[tuple[int, ...], Table]] = {}


def read_table(path: str | Path) -> Table:
    """The file as a checked table; the file of the last call, unchanged, is not parsed again.
    Each call returns its own copy of the values (steps may scale them in place)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise DataError(f"{_where(p)}: is a folder; give the data file")
    if st is None or not stat.S_ISREG(st.st_mode):
        raise DataError(f"{_where(p)}: no such file")
    key, stamp = str(p.resolve()), (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _last.get(key)
    if hit is not None and hit[0] == stamp:
        return Table(hit[1].names, hit[1].values.copy())
    table = _read_checked(p)
    _last.clear()  # one file kept: memory stays that of the data in use
    _last[key] = (stamp, table)
    return Table(table.names, table.values.copy())


def _where(p: Path) -> str:
    """``p``, and for a relative path where it was looked for: relative paths (in a config too)
    are read from the working directory, which may not be the one the user has in mind."""
    return str(p) if p.is_absolute() else f"{p} ({p.absolute()})"


def _read_checked(p: Path) -> Table:
    table = _read_parquet(p) if p.suffix.lower() in (".parquet", ".pq") else _read_csv(p)
    for name in table.names:
        col = table.column(name)
        if col.size and np.all(col == col[0]):
            raise DataError(f"{p}: column {name!r} is constant ({col[0]:g}): it carries no information")
    if table.n_rows <= table.n_cols:
        raise DataError(
            f"{p}: {table.n_rows} data rows for {table.n_cols} columns; need more rows than columns"
        )
    return table


class CsvDomain:
    """The ``csv`` domain plugin. Params: ``path`` (required), ``columns`` (optional subset)."""

    name = NAME

    def hypotheses(self) -> tuple[str, ...]:
        return ()

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        return ()  # known only once the file is read

    def load(self, hypothesis: str, rows: int, seed: int, params: Mapping[str, Any]) -> DomainData:
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise UsageError(f"domain 'csv': unknown param {unknown[0]!r}; valid: {', '.join(PARAMS)}")
        if "path" not in params:
            raise UsageError("domain 'csv': param 'path' is required (the CSV or Parquet file)")
        table = read_table(params["path"])
        columns = params.get("columns")
        if columns is not None:
            missing = [c for c in columns if c not in table.names]
            if missing:
                raise DataError(
                    f"{params['path']}: no column {missing[0]!r}; columns: {', '.join(table.names)}"
                )
            table = table.select(columns)
        return DomainData(
            table=table,
            true_graph=None,
            truth_fn=None,
            metadata={"domain": NAME, "path": str(params["path"])},
        )
