r"""``csv``: the user's own data, read from a CSV file (or Parquet when pyarrow is installed).

The columns used (``columns``, else all) must be numeric, complete and non-constant, with more
rows than columns; other columns may hold anything. Problems are one-line
:class:`~dmca_core.errors.DataError` messages naming the file, the column and the line (the
1-based line number in the file; lines end at ``\n``, ``\r\n`` or ``\r``). Whole lines starting
with ``#`` are comments, blank lines and rows of empty cells are skipped (docs/domains.md has the
rules). No truth is known. A relative ``path`` is read from the working directory (not the config
file's folder).

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
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, UsageError, os_reason
from ..types import DomainData, Table

NAME = "csv"
PARAMS = ("path", "columns")
_BOM = b"\xef\xbb\xbf"
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


# --- the file's lines and records ---------------------------------------------------------------

# a line ends at \r\n, \r or \n, as the csv module reads a file opened with newline='' (and as
# pyarrow reads one): a file saved with \r alone (old Mac, some instruments) reads as with \n
_EOL = re.compile(r"\r\n?|\n")
_EOL_B = re.compile(rb"\r\n?|\n")
# spreadsheet error values (Excel, LibreOffice, Google Sheets): a cell the sheet could not compute
# (a fixed list: "#TODO!" is a comment; Bloomberg writes "#N/A N/A", "#N/A Invalid Security")
_SHEET_ERROR = re.compile(
    r"#N/A(?:\s.*)?|#(?:DIV/0!|VALUE!|REF!|NAME\?|NUM!|NULL!|SPILL!|CALC!|GETTING_DATA|FIELD!|"
    r"BLOCKED!|CONNECT!|BUSY!|UNKNOWN!|ERROR!)",
    re.IGNORECASE,
)
# above csv's default of 131,072 characters, which a long text cell (a waveform, a note) exceeds
# even in a column not used; a C long on every platform
_FIELD_LIMIT = 2**31 - 1


def _line_spans(text: str | bytes | mmap.mmap | memoryview, pos: int = 0) -> Iterator[tuple[int, int]]:
    """Start and end (after its line end) of each line of ``text`` from ``pos``."""
    n = len(text)
    if isinstance(text, str) and text.find("\r", pos) < 0:  # the usual file: find is faster
        while pos < n:
            end = text.find("\n", pos)
            end = n if end < 0 else end + 1
            yield pos, end
            pos = end
        return
    eol = _EOL if isinstance(text, str) else _EOL_B
    while pos < n:
        m = eol.search(text, pos)
        end = n if m is None else m.end()
        yield pos, end
        pos = end


def _is_comment(line: str) -> bool:
    """A comment line: its first character other than spaces and tabs is ``#`` (taken only at the
    start of a record: inside a quoted field such a line is part of the field)."""
    return line.lstrip(" \t").startswith("#")


def _sheet_error(line: str) -> str | None:
    """The spreadsheet error value (``#N/A``, ``#DIV/0!``) a ``#`` line's first cell is, if any:
    that line is a data row whose first cell the sheet could not compute, not a comment."""
    cell = line.lstrip(" \t").split(",", 1)[0].strip()
    return cell if _SHEET_ERROR.fullmatch(cell) else None


def _is_empty_row(cells: list[str]) -> bool:
    """A blank line, or a row of empty cells (``,,`` as spreadsheets write empty rows): skipped."""
    return all(not c.strip() for c in cells)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Records:
    """csv.reader's records of ``text`` from offset ``pos`` (file line ``first_line``), each with
    the file line it starts on. Comment lines at the start of a record are left out (the last one
    kept in ``comment``); ``pos`` and ``line`` follow the last line read. A quoted field left open
    at the end of the file, a csv error or (``body``) a spreadsheet error value is a DataError."""

    def __init__(
        self, path: Path, text: str | bytes | mmap.mmap, pos: int, first_line: int, body: bool = True
    ) -> None:
        self.path, self.text, self.pos, self.line, self.body = path, text, pos, first_line - 1, body
        self.start = self.start_pos = 0
        self.comment: tuple[int, str] | None = None
        self._fresh, self._unclosed = True, False

    def _feed(self) -> Iterator[str]:
        text = self.text
        decode = not isinstance(text, str)
        for s, e in _line_spans(text, self.pos):
            line = text[s:e]
            if decode:  # the lines before the header: checked as UTF-8 from the header on
                line = line.decode("utf-8", "replace")  # type: ignore[union-attr]
            self.line, self.pos = self.line + 1, e
            if self._fresh:
                if _is_comment(line):
                    value = _sheet_error(line) if self.body else None
                    if value is not None:
                        raise DataError(
                            f"{self.path}: line {self.line} starts with {value!r}, a spreadsheet error "
                            "value (a cell the sheet could not compute), not a comment: fix or delete "
                            "the row"
                        )
                    self.comment = (self.line, line)
                    continue
                self._fresh, self.start, self.start_pos = False, self.line, s
            yield line
        self._unclosed = not self._fresh  # csv.reader asked for more in the middle of a record

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(self._feed())
        limit = csv.field_size_limit(_FIELD_LIMIT)
        try:
            while True:
                self._fresh = True
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise DataError(f"{self.path}: line {self.line}: {exc}") from None
                if self._unclosed:
                    raise DataError(
                        f"{self.path}: line {self.start}: a quoted field opened here is never closed"
                    )
                yield self.start, cells
        finally:
            csv.field_size_limit(limit)


def _decode(path: Path, data: memoryview, first_line: int, lead: int = 0) -> str:
    """``data`` (from the start of file line ``first_line``, after ``lead`` bytes of that line:
    a BOM) as text; else one line naming the file line and byte where decoding failed."""
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start
        head = bytes(data[:at])
        ends = list(_EOL_B.finditer(head))
        line = first_line + len(ends)
        col = at - (ends[-1].end() if ends else 0) + 1 + (0 if ends else lead)
        raise DataError(
            f"{path}: line {line}, byte {col}: not UTF-8 (byte 0x{data[at]:02x}); "
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
    (``body``: the bytes after it, from file line ``body_line``). Blank lines, comment lines and
    rows of empty cells before it are skipped."""

    def __init__(self, path: Path, raw: bytes | mmap.mmap, columns: Sequence[str] | None = None) -> None:
        # offsets into ``raw`` rather than slices of it: a slice of a large file is a copy
        self.path = path
        self._columns = columns
        lead = len(_BOM) if raw[: len(_BOM)] == _BOM else 0
        if not _NON_SPACE.search(raw, lead):
            raise DataError(
                f"{path}: the file is empty"
                if len(raw) <= lead
                else f"{path}: the file holds only blank lines"
            )
        records = _Records(path, raw, lead, 1, body=False)
        found = iter(records)
        try:
            names = next((cells for _, cells in found if not _is_empty_row(cells)), None)
        finally:
            found.close()  # restores csv's field size limit now
        if names is None:
            raise DataError(f"{path}: no header line (only comments and blank lines)")
        line = records.start
        if not _ascii(raw):  # the whole file from the header, so a bad byte is found wherever it is
            _decode(path, memoryview(raw)[records.start_pos :], line, lead if line == 1 else 0)
        self.line, self.names = line, [h.strip() for h in names]
        self.raw, self.body_start, self.body_line = raw, records.pos, records.line + 1
        self.body = memoryview(raw)[self.body_start :]
        self._check(records.comment)

    def _check(self, comment: tuple[int, str] | None) -> None:
        path, line, names = self.path, self.line, self.names
        # columns named by numbers (wavelengths, channels) are fine when `columns` names them
        named = self._columns is not None and set(self._columns) <= set(names)
        if not named and all(_is_float(h) for h in names):
            # numpy.savetxt(header=...) writes the names as a comment: the first data row
            # would become the header
            hint = " (the first line that is not a comment must name the columns)"
            if comment is not None:
                text = comment[1].strip()
                inner = next(csv.reader([text[1:].strip()]), [])
                if len(inner) == len(names) and not all(_is_float(c) for c in inner):
                    hint = (
                        f"; the column names may be in the comment on line {comment[0]} ({text!r}, "
                        "as numpy.savetxt writes them; pass comments='' to savetxt)"
                    )
            raise DataError(f"{path}: line {line}: the header line holds numbers, not column names{hint}")
        if len(names) == 1:
            # one column named with the whole line: most likely another separator
            for sep, what in ((";", ";-separated"), ("\t", "tab-separated")):
                if sep in names[0]:
                    raise DataError(
                        f"{path}: line {line}: no comma in the header line; is the file {what}? "
                        "(DMCA reads comma-separated files)"
                    )

    def records(self) -> _Records:
        """The data records, with their file lines."""
        return _Records(self.path, str(self.body, "utf-8"), 0, self.body_line)


def _selected(path: Path, header: _Header, columns: Sequence[str] | None) -> list[int]:
    """Indices of the columns to read; the header checks apply to those only."""
    names, line = header.names, header.line
    index: dict[str, int] = {}
    for i, h in enumerate(names):
        index.setdefault(h, i)
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
        missing = [c for c in wanted if c not in index]
        if missing:
            raise _error(
                DataError,
                f"{path}: no column {missing[0]!r}; columns: {', '.join(h for h in names if h)}",
                "columns",
            )
    counts = Counter(names)
    seen: set[str] = set()
    for h in wanted:
        if h in seen or counts[h] > 1:
            raise DataError(f"{path}: line {line}: column name {h!r} appears twice; names must be unique")
        seen.add(h)
    return [index[h] for h in wanted]


# --- the exact reader: every cell checked, errors with their line -------------------------------


def _exact(path: Path, header: _Header, sel: list[int]) -> np.ndarray:
    records = header.records()
    found = iter(records)
    try:
        rows = [
            _row(path, header, sel, records, line, cells) for line, cells in found if not _is_empty_row(cells)
        ]
    finally:
        found.close()  # csv's field size limit restored now, not when an error's traceback goes
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(sel))


def _row(
    path: Path, header: _Header, sel: list[int], records: _Records, line: int, cells: list[str]
) -> list[float]:
    """The ``sel`` cells of the record on file line ``line``, checked."""
    names, ncols = header.names, len(header.names)
    if len(cells) != ncols:
        text = records.text
        mixed = "\n" in text and re.search(r"\r(?!\n)", text) is not None
        hint = " (the file ends some lines with \\r alone, others with \\n: each ends a line)"
        raise DataError(f"{path}: line {line}: {_fields(len(cells))}, expected {ncols}{hint * mixed}")
    vals = []
    for j in sel:
        text = cells[j].strip()
        if not text:
            raise DataError(f"{path}: column {names[j]!r}, line {line}: empty cell")
        try:
            x = _number(text)
        except ValueError:
            raise DataError(f"{path}: column {names[j]!r}, line {line}: not a number: {text!r}") from None
        if not math.isfinite(x):
            raise DataError(f"{path}: column {names[j]!r}, line {line}: {text!r} is not a finite number")
        vals.append(x)
    return vals


def data_row_line(path: str | Path, row: int, columns: Sequence[str] | None = None) -> int | None:
    """The file line of data row ``row`` (1-based, as errors after reading count them) of a CSV
    file read with ``columns``, or None when the file has no such row or cannot be read."""
    p = Path(path)
    try:
        records = iter(_Header(p, _mapped(p), columns).records())
        k = 0
        for line, cells in records:
            if not _is_empty_row(cells):
                k += 1
                if k == row:
                    records.close()
                    return line
    except (OSError, DataError):
        pass
    return None


# --- the fast readers: None whenever they cannot give exactly what the exact reader would -------


def _quoted_spans(body: bytes | memoryview) -> tuple[np.ndarray, np.ndarray] | None:
    """Offsets of the opening and of the closing quote of each quoted field of ``body``, as
    csv.reader finds them (a quote opens a field only at its start; ``""`` inside one is a quote);
    None when one is never closed (the fast readers would take the rest of the file as its text)."""
    arr = np.frombuffer(body, dtype=np.uint8)
    quotes = np.flatnonzero(arr == 0x22)
    if quotes.size % 2 == 0:
        # the usual file: quotes alternate opening at a field's start and closing at its end, so
        # csv.reader pairs them in order (no doubled quote, none inside a field); checked at once
        opening, closing = quotes[0::2], quotes[1::2]
        before = arr[np.maximum(opening - 1, 0)]
        after = arr[np.minimum(closing + 1, len(arr) - 1)]
        if np.all((opening == 0) | (before == 0x2C) | (before == 0x0A) | (before == 0x0D)) and np.all(
            (closing == len(arr) - 1) | (after == 0x2C) | (after == 0x0A) | (after == 0x0D)
        ):
            return opening, closing
    at = quotes.tolist()
    spans: list[int] = []
    i, n, opened = 0, len(at), -1
    while i < n:
        p = at[i]
        if opened < 0:
            if p == 0 or body[p - 1] in b",\r\n":
                opened = p
        elif i + 1 < n and at[i + 1] == p + 1:
            i += 1  # a doubled quote inside the field
        else:
            spans += (opened, p)
            opened = -1
        i += 1
    if opened >= 0:
        return None
    pairs = np.array(spans, dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _comment_spans(
    raw: bytes | mmap.mmap, start: int, quoted: tuple[np.ndarray, np.ndarray]
) -> list[tuple[int, int]] | None:
    """Start and end, from ``start``, of each comment line of ``raw`` after ``start`` (a line whose
    first character other than spaces and tabs is '#', as :func:`_is_comment`, outside the
    ``quoted`` fields); None when one is a data row with a spreadsheet error value (the exact
    reader names it)."""
    cuts: list[tuple[int, int]] = []
    opening, closing = quoted
    p = raw.find(b"#", start)
    while p >= 0:  # find, not a scan of every byte: a file has few '#'
        q = p
        while q > start and raw[q - 1 : q] in (b" ", b"\t"):
            q -= 1
        if q > start and raw[q - 1 : q] not in (b"\r", b"\n"):
            p = raw.find(b"#", p + 1)
            continue  # '#' later in a line: part of a cell
        k = int(np.searchsorted(opening, q - start)) - 1
        if k >= 0 and q - start <= closing[k]:
            p = raw.find(b"#", p + 1)
            continue  # a line inside a quoted field
        m = _EOL_B.search(raw, p)
        end = len(raw) if m is None else m.end()
        line = raw[q:end]
        if b'"' in line or _sheet_error(line.decode("utf-8")) is not None:
            # a quote in a comment was paired with the data's quotes above (the exact reader
            # skips it); a sheet's error value is a row the exact reader names
            return None
        cuts.append((q - start, end - start))
        p = raw.find(b"#", end)
    return cuts


def _fast_body(header: _Header) -> bytes | memoryview | None:
    """The data for a fast reader, comment lines cut out as the exact reader skips them; None when
    only the exact reader can read them right (a quoted field never closed, a '#' row that is a
    spreadsheet error value)."""
    raw, start, body = header.raw, header.body_start, header.body
    none = np.zeros(0, dtype=np.int64)
    quoted: tuple[np.ndarray, np.ndarray] | None = (none, none)
    if raw.find(b'"', start) >= 0:
        quoted = _quoted_spans(body)
        if quoted is None:
            return None
    if raw.find(b"#", start) >= 0:
        cuts = _comment_spans(raw, start, quoted)
        if cuts is None:
            return None
        if cuts:
            keep, pos = [], 0
            for a, b in cuts:
                keep.append(body[pos:a])
                pos = b
            keep.append(body[pos:])
            body = b"".join(keep)
    # pyarrow drops a BOM at the start of what it reads (`cat header.csv data.csv`), the exact
    # reader does not
    return None if bytes(body[: len(_BOM)]) == _BOM else body


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
    header = _Header(path, raw, columns)
    sel = _selected(path, header, columns)
    names = [header.names[j] for j in sel]
    vals = None
    fast = _fast_reader() if fast is None else fast
    if fast and _NON_SPACE.search(header.raw, header.body_start):
        body = _fast_body(header)
        if body is not None:
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
    except FileNotFoundError:
        raise DataError(f"{_where(p)}: no such file") from None
    except OSError as exc:  # a folder on the way that cannot be entered, a loop of links
        raise DataError(f"{_where(p)}: cannot read: {os_reason(exc, p)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{_where(p)}: is a folder; give the data file")
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a pipe" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        )
        raise DataError(f"{_where(p)}: is {kind}, not a file; save the data to a file and give that")
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
            columns = params.get("columns")
            line = data_row_line(path, int(match.group(1)), columns if isinstance(columns, list) else None)
            if line is not None:
                message = f"{message[: match.start()]}line {line}{message[match.end() :]}"
        return f"{path}: {message}"
