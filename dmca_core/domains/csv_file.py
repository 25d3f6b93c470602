"""``csv``: the user's own data, read from a CSV file (or Parquet when pyarrow is installed).

The columns used (``columns``, else all) must be numeric, complete and non-constant, with more
rows than columns; other columns may hold anything. Problems are one-line
:class:`~dmca_core.errors.DataError` messages naming the file, the column and the line (the
1-based line number in the file). Whole lines starting with ``#`` are comments. No truth is known.
A relative ``path`` is read from the working directory (not the config file's folder).

Reading: a fast parser (pyarrow's CSV reader when installed, else numpy's ``loadtxt``) reads the
file; when it refuses anything, the exact reader below parses the file again, which either finds
the first bad cell with its line or accepts what the fast one could not (``True``, spaces around
numbers). The fast result is used only when it is what the exact reader would give.
"""

from __future__ import annotations

import csv
import io
import math
import mmap
import re
import stat
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, UsageError
from ..types import DomainData, Table

NAME = "csv"
PARAMS = ("path", "columns")
_BOM = b"\xef\xbb\xbf"
_COMMENT_LINE = re.compile(rb"(?m)^[ \t]*#[^\n]*(?:\n|\Z)")
_NON_SPACE = re.compile(rb"\S")


def _error(cls: type[UsageError], message: str, param: str | None) -> UsageError:
    """``cls(message)`` that tells a config study which of its params it is about (``param``;
    None: the params as a whole), so ``dmca run`` names ``studies[i].params.columns``."""
    exc = cls(message)
    exc.param = param  # type: ignore[attr-defined]
    return exc


def _fields(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


def _number(text: str) -> float:
    """A cell's value as ``float`` reads it; ``true``/``false`` (any case) as 1/0, as Parquet's
    booleans are read. Raises ValueError for anything else."""
    try:
        return float(text)
    except ValueError:
        low = text.lower()
        if low == "true":
            return 1.0
        if low == "false":
            return 0.0
        raise


# --- the file's lines -------------------------------------------------------------------------


class _Lines:
    """The lines of ``text`` from ``start``, whole-line ``#`` comments left out; ``line`` is the
    1-based file line of the last line given (csv.reader's own count would skip the comments)."""

    def __init__(self, text: str, start: int, first_line: int) -> None:
        self.text, self.pos, self.line = text, start, first_line - 1

    def __iter__(self) -> Iterator[str]:
        text, n = self.text, len(self.text)
        while self.pos < n:
            end = text.find("\n", self.pos)
            end = n if end < 0 else end + 1
            line = text[self.pos : end]
            self.pos = end
            self.line += 1
            if not line.lstrip().startswith("#"):
                yield line


def _decode(path: Path, data: memoryview, first_line: int, lead: int = 0) -> str:
    """``data`` (from the start of file line ``first_line``, after ``lead`` bytes of that line:
    a BOM) as text; else one line naming the file line and byte where decoding failed."""
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as exc:
        at, head = exc.start, bytes(data[: exc.start + 1])
        line = first_line + head.count(b"\n", 0, at)
        col = at - (head.rfind(b"\n", 0, at) + 1) + 1 + (lead if line == first_line else 0)
        raise DataError(
            f"{path}: line {line}, byte {col}: not UTF-8 (byte 0x{head[at]:02x}); "
            "save the file as UTF-8 (it may be Latin-1 or Windows-1252)"
        ) from None


def _mapped(path: Path) -> bytes | mmap.mmap:
    """The file's bytes, memory-mapped: reading a large file into memory first was a third of
    the fast read's time. (Unmapped when the last view of it goes.)"""
    with path.open("rb") as fh:
        try:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty, or a file that cannot be mapped (a pipe)
            return fh.read()


def _ascii(raw: bytes | mmap.mmap) -> bool:
    if isinstance(raw, bytes):
        return raw.isascii()
    return len(raw) == 0 or int(np.frombuffer(raw, dtype=np.uint8).max()) < 0x80


class _Header:
    """A CSV file's header: its names, the file line it is on, and where the data start
    (``body``: the bytes after it, from file line ``body_line``)."""

    def __init__(self, path: Path, raw: bytes | mmap.mmap) -> None:
        # offsets into ``raw`` rather than slices of it: a slice of a large file is a copy
        lead = len(_BOM) if raw[: len(_BOM)] == _BOM else 0
        pos, line = lead, 1
        while True:  # comment lines before the header
            end = raw.find(b"\n", pos)
            end = len(raw) if end < 0 else end + 1
            if end > pos and raw[pos:end].lstrip().startswith(b"#"):
                pos, line = end, line + 1
                continue
            break
        self.line = line
        if pos >= len(raw):
            raise DataError(f"{path}: the file is empty" if line == 1 else f"{path}: no header line")
        if not _ascii(raw):  # the whole file, so a bad byte is found wherever it is
            _decode(path, memoryview(raw)[pos:], line, lead if line == 1 else 0)
        state = {"pos": pos, "line": line - 1}

        def header_lines() -> Iterator[str]:
            while state["pos"] < len(raw):
                end = raw.find(b"\n", state["pos"])
                end = len(raw) if end < 0 else end + 1
                chunk = raw[state["pos"] : end]
                state["pos"], state["line"] = end, state["line"] + 1
                yield chunk.decode("utf-8")

        names = [h.strip() for h in next(csv.reader(header_lines()), [])]
        self.raw, self.body_start = raw, state["pos"]
        self.body = memoryview(raw)[self.body_start :]
        self.body_line = state["line"] + 1
        self._text: str | None = None
        if not any(names):
            raise DataError(f"{path}: line {line} is empty: the file has no header naming the columns")
        if len(names) == 1:
            # one column named with the whole line: most likely another separator
            for sep, what in ((";", ";-separated"), ("\t", "tab-separated")):
                if sep in names[0]:
                    raise DataError(
                        f"{path}: line {line}: no comma in the header line; is the file {what}? "
                        "(DMCA reads comma-separated files)"
                    )
        self.names = names

    def lines(self) -> _Lines:
        """The data lines, for csv.reader."""
        if self._text is None:
            self._text = str(self.body, "utf-8")
        return _Lines(self._text, 0, self.body_line)


def _selected(path: Path, header: _Header, columns: Sequence[str] | None) -> list[int]:
    """Indices of the columns to read; the header checks apply to those only."""
    names, line = header.names, header.line
    if columns is None:
        for i, h in enumerate(names):
            if not h:
                hint = (
                    " (written with pandas' index? use index=False or give the column a name)"
                    if i == 0
                    else ""
                )
                raise DataError(f"{path}: line {line}: column {i + 1} has no name{hint}")
        wanted = names
    else:
        wanted = list(columns)
        missing = [c for c in wanted if c not in names]
        if missing:
            raise _error(
                DataError,
                f"{path}: no column {missing[0]!r}; columns: {', '.join(h for h in names if h)}",
                "columns",
            )
    seen: set[str] = set()
    for h in wanted:
        if h in seen or names.count(h) > 1:
            raise DataError(f"{path}: line {line}: column name {h!r} appears twice; names must be unique")
        seen.add(h)
    return [names.index(h) for h in wanted]


# --- the exact reader: every cell checked, errors with their line -------------------------------


def _exact(path: Path, header: _Header, sel: list[int]) -> np.ndarray:
    names, ncols = header.names, len(header.names)
    lines = header.lines()
    rows: list[list[float]] = []
    for raw in csv.reader(lines):
        line = lines.line
        if not raw or all(not c.strip() for c in raw):
            continue
        if len(raw) != ncols:
            raise DataError(f"{path}: line {line}: {_fields(len(raw))}, expected {ncols}")
        vals = []
        for j in sel:
            text = raw[j].strip()
            if not text:
                raise DataError(f"{path}: column {names[j]!r}, line {line}: empty cell")
            try:
                x = _number(text)
            except ValueError:
                raise DataError(f"{path}: column {names[j]!r}, line {line}: not a number: {text!r}") from None
            if not math.isfinite(x):
                raise DataError(f"{path}: column {names[j]!r}, line {line}: {text!r} is not a finite number")
            vals.append(x)
        rows.append(vals)
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(sel))


def data_row_line(path: str | Path, row: int) -> int | None:
    """The file line of data row ``row`` (1-based, as errors after reading count them) of a CSV
    file, or None when the file has no such row or cannot be read."""
    p = Path(path)
    try:
        header = _Header(p, _mapped(p))
    except (OSError, DataError):
        return None
    lines = header.lines()
    k = 0
    for cells in csv.reader(lines):
        if cells and any(c.strip() for c in cells):
            k += 1
            if k == row:
                return lines.line
    return None


# --- the fast readers: None whenever they cannot give exactly what the exact reader would -------


def _fast_pyarrow(body: bytes | memoryview, ncols: int, sel: list[int]) -> np.ndarray | None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = [f"c{i}" for i in range(ncols)]
    wanted = [names[j] for j in sel]

    def read(types: dict[str, Any] | None) -> Any:
        return pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(body)),  # no copy of a large file
            read_options=pcsv.ReadOptions(column_names=names),
            parse_options=pcsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True),
            convert_options=pcsv.ConvertOptions(
                include_columns=wanted,
                column_types=types,
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                true_values=["true", "True", "TRUE"],
                false_values=["false", "False", "FALSE"],
            ),
        )

    # typed as float64: pyarrow's float parser takes what float() takes (its integer inference
    # also reads hex, and "-0" as 0); a column of true/false is found by inference, then read as
    # booleans, the others still as float64
    f64 = dict.fromkeys(wanted, pa.float64())
    try:
        tbl = read(f64)
    except (pa.ArrowException, ValueError):
        try:
            inferred = read(None)
        except (pa.ArrowException, ValueError):
            return None
        bools = [n for n, c in zip(wanted, inferred.columns, strict=True) if pa.types.is_boolean(c.type)]
        if not bools:
            return None  # text, dates, empty cells: the exact reader names the cell
        try:
            tbl = read({**f64, **dict.fromkeys(bools, pa.bool_())})
        except (pa.ArrowException, ValueError):
            return None
    out = np.empty((tbl.num_rows, len(sel)), dtype=np.float64)
    for k, col in enumerate(tbl.columns):
        out[:, k] = col.to_numpy(zero_copy_only=False)
    return out


def _fast_numpy(body: bytes | memoryview, ncols: int, sel: list[int]) -> np.ndarray | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": the exact reader says so
            vals = np.loadtxt(
                io.StringIO(str(body, "utf-8")),
                delimiter=",",
                quotechar='"',
                comments=None,
                dtype=np.float64,
                ndmin=2,
            )
    except (ValueError, TypeError):
        return None
    if vals.shape[1] != ncols:
        return None
    return np.ascontiguousarray(vals[:, sel])


def _fast_reader() -> Any:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return _fast_numpy
    return _fast_pyarrow


def _read_csv(path: Path, columns: Sequence[str] | None = None, fast: Any = None) -> Table:
    """The file's ``columns`` (all when None); ``fast``: the fast reader (default: the best one
    installed; ``False``: none, only the exact reader)."""
    try:
        raw = _mapped(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    header = _Header(path, raw)
    sel = _selected(path, header, columns)
    names = [header.names[j] for j in sel]
    body: bytes | memoryview = header.body
    vals = None
    fast = _fast_reader() if fast is None else fast
    if fast and _NON_SPACE.search(header.raw, header.body_start):
        # whole-line comments, as the exact reader skips them
        if header.raw.find(b"#", header.body_start) >= 0:
            body = _COMMENT_LINE.sub(b"", body)
        vals = fast(body, len(header.names), sel)
        if vals is not None and not np.isfinite(vals).all():
            vals = None  # NaN, inf: the exact reader names the line
    if vals is None:
        vals = _exact(path, header, sel)
    return Table(names, vals)


def _read_parquet(path: Path, columns: Sequence[str] | None = None) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        names = list(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"{path}: cannot read as Parquet: {exc}") from None
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise _error(
                DataError, f"{path}: no column {missing[0]!r}; columns: {', '.join(names)}", "columns"
            )
    try:
        tbl = pq.read_table(path, columns=list(columns) if columns is not None else None)
    except Exception as exc:  # noqa: BLE001 - as above
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


# the last file read, by resolved path and columns, with its (inode, size, mtime, ctime): a study's
# pre-flight check and its steps read the same file, and re-parsing a large CSV for each was most
# of their time. A file replaced or rewritten gets a new inode or ctime even where mtimes are coarse.
_last: dict[tuple[str, tuple[str, ...] | None], tuple[tuple[int, ...], Table]] = {}


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> Table:
    """The file's ``columns`` (all when None) as a checked table; the last call's, file unchanged,
    is not parsed again. Each call returns its own copy of the values (steps may scale them)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise DataError(f"{_where(p)}: is a folder; give the data file")
    if st is None or not stat.S_ISREG(st.st_mode):
        raise DataError(f"{_where(p)}: no such file")
    key = (str(p.resolve()), tuple(columns) if columns is not None else None)
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _last.get(key)
    if hit is not None and hit[0] == stamp:
        return Table(hit[1].names, hit[1].values.copy())
    table = _read_checked(p, columns)
    _last.clear()  # one file kept: memory stays that of the data in use
    _last[key] = (stamp, table)
    return Table(table.names, table.values.copy())


def _where(p: Path) -> str:
    """``p``, and for a relative path where it was looked for: relative paths (in a config too)
    are read from the working directory, which may not be the one the user has in mind."""
    return str(p) if p.is_absolute() else f"{p} ({p.absolute()})"


def is_parquet(p: Path) -> bool:
    return p.suffix.lower() in (".parquet", ".pq")


def _read_checked(p: Path, columns: Sequence[str] | None) -> Table:
    table = _read_parquet(p, columns) if is_parquet(p) else _read_csv(p, columns)
    for name in table.names:
        col = table.column(name)
        if col.size and np.all(col == col[0]):
            raise DataError(f"{p}: column {name!r} is constant ({col[0]:g}): it carries no information")
    if table.n_rows <= table.n_cols:
        raise DataError(
            f"{p}: {table.n_rows} data rows for {table.n_cols} columns; need more rows than columns"
        )
    return table


def _checked_params(params: Mapping[str, Any]) -> tuple[str, list[str] | None]:
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise _error(
            UsageError, f"domain 'csv': unknown param {unknown[0]!r}; valid: {', '.join(PARAMS)}", unknown[0]
        )
    if "path" not in params:
        raise _error(UsageError, "domain 'csv': param 'path' is required (the CSV or Parquet file)", None)
    path = params["path"]
    if not isinstance(path, str | Path) or not str(path):
        raise _error(UsageError, f"must be a file name, got {path!r}", "path")
    columns = params.get("columns")
    if columns is not None:
        if (
            isinstance(columns, str)
            or not isinstance(columns, Sequence)
            or not all(isinstance(c, str) for c in columns)
        ):
            raise _error(UsageError, f"must be a list of column names, got {columns!r}", "columns")
        if len(columns) < 2:
            raise _error(UsageError, "name at least two columns (a treatment and an outcome)", "columns")
        twice = next((c for i, c in enumerate(columns) if c in columns[:i]), None)
        if twice is not None:
            raise _error(UsageError, f"{twice!r} is named twice", "columns")
        columns = list(columns)
    return str(path), columns


_DATA_ROW = re.compile(r"\bdata row (\d+)\b")


class CsvDomain:
    """The ``csv`` domain plugin. Params: ``path`` (required), ``columns`` (optional subset)."""

    name = NAME
    # the data are the file: no hypothesis, rows or repeated steps mean anything (docs/plugins.md)
    fixed_data = "reads the whole file"

    def hypotheses(self) -> tuple[str, ...]:
        return ()

    def variables(self, hypothesis: str) -> tuple[str, ...]:
        return ()  # known only once the file is read

    def check(self, hypothesis: str, params: Mapping[str, Any]) -> None:
        _checked_params(params)

    def load(self, hypothesis: str, rows: int, seed: int, params: Mapping[str, Any]) -> DomainData:
        path, columns = _checked_params(params)
        table = read_table(path, columns)
        return DomainData(
            table=table, true_graph=None, truth_fn=None, metadata={"domain": NAME, "path": path}
        )

    def name_data_error(self, message: str, params: Mapping[str, Any]) -> str:
        """An error about data already read (too few rows, a collinear column, a row of leverage
        1), named by its file, and a "data row N" by its file line."""
        path = str(params.get("path", "?"))
        match = _DATA_ROW.search(message)
        if match is not None and not is_parquet(Path(path)):
            line = data_row_line(path, int(match.group(1)))
            if line is not None:
                message = f"{message[: match.start()]}line {line}{message[match.end() :]}"
        return f"{path}: {message}"
