"""The csv domain reads the user's numeric data and rejects bad files in one line."""

from __future__ import annotations

import numpy as np
import pytest

from dmca_core import plugins
from dmca_core.errors import DataError, UsageError


def _load(path, **params):
    return plugins.get_domain("csv").load("-", 0, 0, {"path": str(path), **params})


def test_reads_numeric_columns(tmp_path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("a,b,c\n1,2,3\n4,5,7\n7,8.5,1e3\n2,1,0\n")
    data = _load(p)
    assert data.table.names == ("a", "b", "c") and data.table.n_rows == 4
    assert data.truth_fn is None and data.true_graph is None and data.truth("a", "b", 0, 1) is None
    assert _load(p, columns=["a", "c"]).table.names == ("a", "c")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a,b\n1,2\n3,x\n5,6\n", r"column 'b', line 3: not a number: 'x'"),
        ("a,b\n1,2\n3,\n5,6\n", r"column 'b', line 3: empty cell"),
        ("a,b\n1,2\n3,nan\n5,6\n", r"column 'b', line 3: 'nan' is not a finite number"),
        ("a,b\n1,2\n1,3\n1,4\n", r"column 'a' is constant"),
        ("a,b,c\n1,2,3\n4,5,6\n", r"2 data rows for 3 columns"),
        ("a,b\n1,2\n3,4,5\n", r"line 3: 3 fields, expected 2"),
        ("", r"empty"),
    ],
)
def test_bad_files(tmp_path, text: str, match: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=match) as info:
        _load(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_column_and_params(tmp_path) -> None:
    with pytest.raises(DataError, match="no such file"):
        _load(tmp_path / "nope.csv")
    p = tmp_path / "d.csv"
    p.write_text("a,b\n1,2\n3,5\n4,1\n")
    with pytest.raises(DataError, match="no column 'z'; columns: a, b"):
        _load(p, columns=["a", "z"])
    with pytest.raises(UsageError, match="unknown param 'sep'"):
        _load(p, sep=";")
    with pytest.raises(UsageError, match="'path' is required"):
        plugins.get_domain("csv").load("-", 0, 0, {})


def test_parquet(tmp_path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0, 5.0], "y": [2, 4, 7, 1]}), p)
    data = _load(p)
    np.testing.assert_allclose(data.table.column("y"), [2, 4, 7, 1])
    pq.write_table(pa.table({"x": [1.0, None, 3.0, 4.0], "y": [2, 4, 7, 1]}), p)
    with pytest.raises(DataError, match="column 'x', row 2"):
        _load(p)


def test_an_unchanged_file_is_parsed_once_and_an_edited_one_again(tmp_path, monkeypatch) -> None:
    import os

    from dmca_core.domains import csv_file

    parsed: list[str] = []
    real = csv_file._read_csv
    monkeypatch.setattr(csv_file, "_read_csv", lambda p, c: parsed.append(str(p)) or real(p, c))
    p = tmp_path / "d.csv"
    p.write_text("a,b\n1,2\n3,5\n4,4\n")
    first = _load(p).table
    first.values[0, 0] = 99.0  # a step scaling its copy in place must not reach the next one
    second = _load(p).table
    assert len(parsed) == 1 and second.values[0, 0] == 1.0
    p.write_text("a,b\n1,2\n3,5\n4,7\n")
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))  # a later mtime, surely
    assert _load(p).table.values[2, 1] == 7.0 and len(parsed) == 2
    p.unlink()
    with pytest.raises(DataError, match="no such file"):
        _load(p)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,a\n1,2,3\n", "line 1: column name 'a' appears twice; names must be unique"),
        ("a,,c\n1,2,3\n", "line 1: column 2 has no name"),
        (
            "a;b;c\n1;2;3\n",
            "line 1: no comma in the header line; is the file ;-separated? (DMCA reads comma-separated files)",
        ),
        (
            "a\tb\tc\n1\t2\t3\n",
            "line 1: no comma in the header line; is the file tab-separated? (DMCA reads comma-separated files)",
        ),
        ("\n \r\n", "the file holds only blank lines"),
        ("# units: m\n\n,,\n", "no header line (only comments and blank lines)"),
        (
            "\n1,2\n3,4\n",
            "line 2: the header line holds numbers, not column names (the first line that is not a "
            "comment must name the columns)",
        ),
    ],
)
def test_bad_headers_say_what_is_wrong(tmp_path, text: str, message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError) as info:
        _load(p)
    assert str(info.value) == f"{p}: {message}"


def test_blank_lines_comments_and_empty_rows_before_the_header_are_skipped(tmp_path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("\n  \n# run 4\n,,\n\na,b,c\n1,2,3\n4,5,7\n,,\n7,8.5,1e3\n2,1,0\n,,\n")
    table = _load(p).table
    assert table.names == ("a", "b", "c")
    np.testing.assert_array_equal(table.column("b"), [2, 5, 8.5, 1])


def test_why_a_path_cannot_be_read(tmp_path, monkeypatch) -> None:
    import os
    from pathlib import Path

    (tmp_path / "f.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError) as info:
        _load(tmp_path / "f.csv" / "d.csv")
    assert (
        str(info.value)
        == f"{tmp_path / 'f.csv' / 'd.csv'}: cannot read: part of the path is a file, not a folder"
    )
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(DataError) as info:
        _load(tmp_path / "pipe.csv")
    assert (
        str(info.value)
        == f"{tmp_path / 'pipe.csv'}: is a pipe, not a file; save the data to a file and give that"
    )
    # a folder on the way that cannot be entered (EACCES; root enters any, so stat is made to say it)
    locked = tmp_path / "locked" / "d.csv"
    real = Path.stat

    def stat(self, **kw):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, **kw)

    monkeypatch.setattr(Path, "stat", stat)
    with pytest.raises(DataError) as info:
        _load(locked)
    assert str(info.value) == f"{locked}: cannot read: permission denied"


def test_a_folder_is_not_called_missing(tmp_path) -> None:
    with pytest.raises(DataError) as info:
        _load(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a folder; give the data file"
    with pytest.raises(DataError, match=r"no such file"):
        _load(tmp_path / "nope.csv")


def test_a_relative_path_says_where_it_was_looked_for(tmp_path, monkeypatch) -> None:
    # relative paths are read from the working directory: the error shows which one that was
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(DataError) as info:
        _load("lab.csv")
    assert str(info.value) == f"lab.csv ({tmp_path / 'elsewhere' / 'lab.csv'}): no such file"
    (tmp_path / "elsewhere" / "sub").mkdir()
    with pytest.raises(DataError) as info:
        _load("sub")
    assert str(info.value) == f"sub ({tmp_path / 'elsewhere' / 'sub'}): is a folder; give the data file"
    # an absolute path is shown as it is
    with pytest.raises(DataError) as info:
        _load(tmp_path / "lab.csv")
    assert str(info.value) == f"{tmp_path / 'lab.csv'}: no such file"


def test_a_config_with_a_relative_path_run_from_elsewhere(fallback, tmp_path, monkeypatch, capsys) -> None:
    from dmca_core.cli import main

    work = tmp_path / "work"
    work.mkdir()
    (work / "lab.csv").write_text("a,b\n" + "".join(f"{i},{2 * i + i % 3}\n" for i in range(30)))
    cfg = work / "csv.yaml"
    cfg.write_text(
        f"estimator: fallback\ntelemetry: {{path: {tmp_path / 'tel.jsonl'}}}\nstudies:\n"
        "  - {domain: csv, params: {path: lab.csv}, treatment: a, outcome: b, graph: a->b}\n"
    )
    monkeypatch.chdir(tmp_path)  # `cd /tmp && dmca run work/csv.yaml`: lab.csv is not in /tmp
    assert main(["run", "work/csv.yaml", "--quiet", "--out", str(tmp_path / "out")]) == 2
    # the study's key and line too: in a config of many studies, which one names the file
    where = "work/csv.yaml:4: studies[0].params.path"
    assert (
        capsys.readouterr().err == f"dmca: error: {where}: lab.csv ({tmp_path / 'lab.csv'}): no such file\n"
    )
    monkeypatch.chdir(work)  # the documented rule: relative to the working directory
    assert main(["run", "csv.yaml", "--quiet", "--out", str(tmp_path / "out")]) == 0
