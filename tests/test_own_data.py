"""A physicist's own files through the csv domain, `dmca estimate/discover` and `dmca run`: study
keys that mean nothing for a file, columns left out, comments, errors naming the file and line,
and the fast reader giving exactly what the exact one gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dmca_core import plugins
from dmca_core.cli import _ambiguity, build_parser, main
from dmca_core.domains import csv_file
from dmca_core.errors import DataError


def _load(path, **params):
    return plugins.get_domain("csv").load("-", 0, 0, {"path": str(path), **params})


def _sem(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    """depth -> exposure -> counts, depth -> counts (true effect of exposure 0.8)."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1, 6, n)
    exposure = 60 + 20 * depth + rng.normal(0, 10, n)
    counts = 0.8 * exposure - 30 * depth + rng.normal(0, 10, n)
    return {"depth": depth, "exposure": exposure, "counts": counts}


def _write(path: Path, cols: dict[str, list | np.ndarray], head: str = "") -> Path:
    names = list(cols)
    lines = [",".join(names)]
    for row in zip(*cols.values(), strict=True):
        lines.append(",".join(x if isinstance(x, str) else repr(float(x)) for x in row))
    path.write_text(head + "\n".join(lines) + "\n")
    return path


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.removeprefix("dmca: error: ").rstrip("\n")


# --- 1. study keys that mean nothing for a file -------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        (
            "    hypothesis: WIMP\n",
            5,
            "studies[0].hypothesis: the csv domain reads the whole file and takes no hypothesis "
            "(results would be labelled csv/WIMP); leave hypothesis out",
        ),
        ("    rows: 500\n", 5, "studies[0].rows: the csv domain reads the whole file; leave rows out"),
        ("    rows: 2000\n", 5, "studies[0].rows: the csv domain reads the whole file; leave rows out"),
        (
            "    steps: 3\n",
            5,
            "studies[0].steps: the csv domain reads the whole file at every step, so 3 steps would "
            "repeat one estimate; leave steps out",
        ),
    ],
)
def test_study_keys_a_file_ignores_are_refused_before_any_step(
    fallback, tmp_path, monkeypatch, capsys, extra: str, line: int, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "lab.csv", _sem(200))
    (tmp_path / "c.yaml").write_text(
        "estimator: fallback\nstudies:\n  - domain: csv\n    params: {path: lab.csv}\n"
        + extra
        + "    treatment: exposure\n    outcome: counts\n    graph: discover\n"
    )
    for argv in (["run", "c.yaml", "--dry-run"], ["run", "c.yaml", "-q"]):
        assert main(argv) == 2
        assert _err(capsys) == f"c.yaml:{line}: {message}"
    assert not (tmp_path / "results").exists()


def test_dry_run_lists_a_csv_study_as_its_file(fallback, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "lab.csv", _sem(200))
    (tmp_path / "c.yaml").write_text(
        "estimator: fallback\nstudies:\n"
        "  - {name: all, domain: csv, params: {path: lab.csv}, treatment: exposure, outcome: counts, graph: discover}\n"
        "  - {name: two, domain: csv, params: {path: lab.csv, columns: [exposure, counts]},"
        " treatment: exposure, outcome: counts, graph: discover}\n"
    )
    assert main(["run", "c.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "  all: exposure → counts, 0 → 1; file lab.csv; graph discover\n" in out
    assert "  two: exposure → counts, 0 → 1; file lab.csv (columns exposure, counts); graph discover\n" in out
    assert "rows" not in out


# --- 2. columns leave bad columns out -----------------------------------------------------------


def test_columns_leave_out_text_constant_incomplete_and_unnamed_columns(tmp_path) -> None:
    d = _sem(60)
    n = 60
    cols = {
        "": [str(i) for i in range(n)],  # pandas' index
        **d,
        "site": ["LNGS" if i % 2 else "SNOLAB" for i in range(n)],
        "const": [1.0] * n,
        "flag": ["" if i == 5 else "1" for i in range(n)],
    }
    p = _write(tmp_path / "mixed.csv", cols)
    with pytest.raises(DataError, match="column 1 has no name"):
        _load(p)
    table = _load(p, columns=["exposure", "depth", "counts"]).table
    assert table.names == ("exposure", "depth", "counts")  # in the order asked for
    np.testing.assert_array_equal(table.column("depth"), d["depth"])
    # a selected bad column is still found, with its line
    with pytest.raises(DataError, match=r"column 'site', line 2: not a number: 'SNOLAB'"):
        _load(p, columns=["depth", "site"])
    with pytest.raises(DataError, match=r"column 'flag', line 7: empty cell"):
        _load(p, columns=["depth", "flag"])
    with pytest.raises(DataError, match=r"column 'const' is constant"):
        _load(p, columns=["depth", "const"])


def test_estimate_and_discover_take_columns(fallback, tmp_path, capsys) -> None:
    d = _sem(400)
    p = _write(tmp_path / "site.csv", {**d, "site": ["LNGS"] * 400})
    assert main(["discover", "--data", str(p), "--estimator", "fallback"]) == 2
    assert "column 'site', line 2: not a number: 'LNGS'" in _err(capsys)
    assert main(["discover", "--data", str(p), "--columns", "depth,exposure,counts", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == ["depth", "exposure", "counts"]
    argv = ["estimate", "--data", str(p), "--treatment", "exposure", "--outcome", "counts", "--json"]
    graph = ["--graph", "depth->exposure,depth->counts,exposure->counts"]
    assert main([*argv, *graph, "--columns", "depth, exposure, counts"]) == 0
    assert abs(json.loads(capsys.readouterr().out)["causal_effect"] - 0.8) < 0.1
    assert main([*argv, *graph, "--columns", "depth,exposure,count"]) == 2
    assert _err(capsys) == f"--columns: {p}: no column 'count'; columns: depth, exposure, counts, site"
    assert main([*argv, "--discover", "--columns", "exposure,depth"]) == 2
    assert _err(capsys) == "--outcome: unknown variable 'counts'; --columns: exposure, depth"


def test_a_config_column_typo_names_params_columns(fallback, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "lab.csv", _sem(200))
    (tmp_path / "c.yaml").write_text(
        "estimator: fallback\nstudies:\n  - domain: csv\n    params:\n      path: lab.csv\n"
        "      columns: [depth, exposure, count]\n    treatment: exposure\n    outcome: counts\n"
        "    graph: discover\n"
    )
    assert main(["run", "c.yaml", "--dry-run"]) == 2
    assert _err(capsys) == (
        "c.yaml:6: studies[0].params.columns: lab.csv: no column 'count'; columns: depth, exposure, counts"
    )


# --- 3. comments and field counts ---------------------------------------------------------------


def test_comment_lines_before_and_after_the_header(tmp_path) -> None:
    d = _sem(30)
    p = _write(tmp_path / "c.csv", d, head="# campaign 2024, detector A\n  # calibrated\n")
    text = p.read_text().splitlines()
    text.insert(10, "# run 7 starts here, after a power cut")
    p.write_text("\n".join(text) + "\n")
    table = _load(p).table
    assert table.names == ("depth", "exposure", "counts") and table.n_rows == 30
    np.testing.assert_array_equal(table.column("counts"), d["counts"])
    # line numbers stay the file's own, comments counted
    p.write_text("# note, with a comma\na,b\n1,2\n# c\n3\n")
    with pytest.raises(DataError) as info:
        _load(p)
    assert str(info.value) == f"{p}: line 5: 1 field, expected 2"
    p.write_text("# only a comment\n")
    with pytest.raises(DataError, match="no header line"):
        _load(p)


# --- 4. errors found after reading name the file ------------------------------------------------


def test_errors_after_reading_name_the_file_and_line(fallback, tmp_path, monkeypatch, capsys) -> None:
    rng = np.random.default_rng(7)
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("a,b\n1.0,2.0\n2.0,1.0\n3.0,5.0\n")
    assert (
        main(["estimate", "--data", str(tiny), "--treatment", "a", "--outcome", "b", "--graph", "a->b"]) == 2
    )
    assert _err(capsys) == f"{tiny}: the data have 3 rows; a study over 2 columns needs 20"

    d = _sem(300)
    coll = _write(tmp_path / "collinear.csv", {"depth": d["depth"], "depth2": 2 * d["depth"], **d})
    assert main(["discover", "--data", str(coll), "--estimator", "fallback"]) == 2
    assert _err(capsys).startswith(f"{coll}: column 'depth2' is an exact linear combination of 'depth'")

    # the only treated row is data row 1, on file line 4 (a comment and a blank line before it)
    n = 300
    z, t = rng.normal(size=n), np.zeros(n)
    t[0] = 1.0
    rare = _write(tmp_path / "rare.csv", {"z": z, "t": t, "y": t + z + rng.normal(size=n)}, head="# k=1\n")
    lines = rare.read_text().splitlines()
    rare.write_text("\n".join([*lines[:2], "", *lines[2:]]) + "\n")
    argv = [
        "estimate",
        "--data",
        str(rare),
        "--treatment",
        "t",
        "--outcome",
        "y",
        "--graph",
        "z->t,z->y,t->y",
    ]
    assert main(argv) == 2
    assert _err(capsys).startswith(f"{rare}: line 4 has leverage 1 (the fit passes through it exactly")

    # and in a config's study: the step's error names the file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(
        f"estimator: fallback\ntelemetry: {{path: {tmp_path / 't.jsonl'}}}\nstudies:\n"
        "  - {domain: csv, params: {path: rare.csv}, treatment: t, outcome: y, graph: 'z->t,z->y,t->y'}\n"
    )
    assert main(["run", "c.yaml", "-q", "--out", "out"]) == 1
    row = json.loads((tmp_path / "out" / "results.json").read_text())
    row = row["results"][0] if isinstance(row, dict) else row[0]
    assert row["error"].startswith("rare.csv: line 4 has leverage 1")


# --- 5. smaller ones ----------------------------------------------------------------------------


def test_latin1_names_line_and_byte_and_booleans_read_as_in_parquet(tmp_path) -> None:
    p = tmp_path / "l.csv"
    p.write_bytes("depth [µm],counts\n1,2\n2,3\n3,5\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        _load(p)
    assert str(info.value).startswith(f"{p}: line 1, byte 8: not UTF-8 (byte 0xb5)")
    p.write_bytes(b"a,b\n1,2\n2,3\n3,5\n4,\xe96\n")
    with pytest.raises(DataError, match=r"line 5, byte 3: not UTF-8 \(byte 0xe9\)"):
        _load(p)

    rng = np.random.default_rng(2)
    x, veto = rng.normal(size=40), rng.uniform(size=40) < 0.5
    cells = [("TRUE" if v else "false") if i % 3 else str(bool(v)) for i, v in enumerate(veto)]
    table = _load(_write(tmp_path / "b.csv", {"x": x, "veto": cells})).table
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"x": x, "veto": veto}), tmp_path / "b.parquet")
    np.testing.assert_array_equal(table.values, _load(tmp_path / "b.parquet").table.values)
    assert set(table.column("veto")) == {0.0, 1.0}


def test_a_comma_in_a_column_name(fallback, tmp_path, capsys) -> None:
    d = _sem(200)
    p = _write(
        tmp_path / "c.csv", {'"flux [ph,cm-2]"': d["depth"], "exposure": d["exposure"], "counts": d["counts"]}
    )
    argv = ["estimate", "--data", str(p), "--treatment", "exposure", "--outcome", "counts"]
    assert main([*argv, "--graph", '"flux [ph,cm-2]"->exposure,exposure->counts']) == 2
    assert _err(capsys).endswith(
        "a column name with a comma ('flux [ph,cm-2]') cannot be written in --graph, whose edges are "
        "separated by commas: rename the column, or use --discover"
    )
    # --columns takes it in double quotes, as a CSV header does
    assert main(["discover", "--data", str(p), "--columns", '"flux [ph,cm-2]",counts', "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == ["flux [ph,cm-2]", "counts"]


def test_pandas_index_hint(tmp_path) -> None:
    p = tmp_path / "i.csv"
    p.write_text(",a,b\n0,1,2\n1,2,1\n2,3,5\n")
    with pytest.raises(DataError) as info:
        _load(p)
    assert str(info.value) == (
        f"{p}: line 1: column 1 has no name (written with pandas' index? use index=False or give "
        "the column a name)"
    )
    assert _load(p, columns=["a", "b"]).table.n_rows == 3


def test_help_texts_and_ambiguity_lists_distinct_values() -> None:
    estimate = build_parser()._subparsers._group_actions[0].choices["estimate"]  # noqa: SLF001
    helps = {a.dest: a.help or "" for a in estimate._actions}  # noqa: SLF001
    assert "seed" in helps["seed"] and "A--B" in helps["graph"] and "comma" in helps["graph"]
    assert "columns" in helps and "#" in helps["data"]
    r = {"ambiguous": True, "causal_effect": -3.61512, "effect_set": [-3.61512, 0.0, -0.0, 0.0, 1e-12, 2.5]}
    assert _ambiguity(r) == "  (ambiguous: the graph also allows 0, 1e-12, 2.5)"


def test_an_undefined_di2_is_printed_not_a_crash(fallback, tmp_path, capsys) -> None:
    # an exact copy of a column outside the adjustment set: DI2 is not defined (null), the
    # effect is; the text output said TypeError before
    d = _sem(500, seed=5)
    p = _write(tmp_path / "k.csv", {"depth": d["depth"], "depth2": 2 * d["depth"], **d})
    argv = ["estimate", "--data", str(p), "--treatment", "exposure", "--outcome", "counts", "--estimator"]
    graph = ["--graph", "depth->exposure,depth->counts,exposure->counts,depth2->counts"]
    assert main([*argv, "fallback", *graph, "--json"]) == 0
    if json.loads(capsys.readouterr().out)["DI2"] is not None:
        pytest.skip("this draw gives a defined DI2")  # not counted: the case needs DI2 null
    assert main([*argv, "fallback", *graph]) == 0
    assert "DI2 n/a" in capsys.readouterr().out


# --- 6. the fast reader gives what the exact one gives ------------------------------------------

_TRICKY = {
    "plain": "a,b,c\n1,2,3\n4,5.5,6e2\n-7,.8,9\n1.5,2,1\n",
    "crlf_bom": "\ufeffa,b\r\n1,2\r\n3,4\r\n5,7\r\n",
    "quoted": '"a","b"\n"1","2"\n"3","4.5"\n"5","1"\n',
    "spaces": "a , b\n 1 , 2\n3 ,4\n 5,  1\n",
    "blank_lines": "a,b\n1,2\n\n3,4\n  \n5,1\n\n",
    "comments": "# head\na,b\n1,2\n# mid\n3,4\n5,1\n",
    "inline_hash": "a,b\n1,2\n3,4 # note\n5,1\n",
    "bools": "a,b\n1,true\n2,False\n3,TRUE\n4,tRuE\n",
    "text": "a,b\n1,2\n3,x\n5,1\n",
    "empty_cell": "a,b\n1,2\n3,\n5,1\n",
    "na": "a,b\n1,2\n3,NA\n5,1\n",
    "nan": "a,b\n1,2\n3,nan\n5,1\n",
    "inf": "a,b\n1,2\n-inf,4\n5,1\n",
    "ragged": "a,b\n1,2\n3,4,5\n5,1\n",
    "short": "a,b\n1,2\n3\n5,1\n",
    "underscore": "a,b\n1_0,2\n3,4\n5,1\n",
    "big_int": "a,b\n12345678901234567891,2\n3,4\n9007199254740993,1\n",
    "plus": "a,b\n+1,2\n3,-4\n5,+1e-3\n",
    "date": "a,b\n2024-01-01,2\n2024-01-02,4\n2024-01-03,1\n",
    "no_newline_at_end": "a,b\n1,2\n3,4\n5,1",
    "header_only": "a,b\n",
    "commas_only": "a,b\n1,2\n,\n5,1\n",
    "hex": "a,b\n0x10,2\n3,4\n5,1\n",
    # line ends: \r alone ends a line, as \n and \r\n do (the csv module with newline='', pyarrow)
    "cr_only": "a,b\r1,2\r3,4\r5,1\r",
    "cr_mixed": "a,b\n1,2\n3,4\r5,1\n6,2\n",
    "cr_comment": "# run 3\ra,b\r1,2\r# c\r3,4\r5,1\r",
    "stray_cr": "a,b,n\n1,2,x\n3,4,ab\rcd\n5,1,y\n",
    "crlf_quoted": 'a,b,n\r\n1,2,"x\r\ny"\r\n3,4,z\r\n5,1,w\r\n',
    # quoting
    "quoted_cr": 'a,b,n\n1,2,x\n3,4,"p\rq"\n5,1,y\n',
    "quoted_lf": 'a,b,n\n1,2,x\n3,4,"p\nq"\n5,1,y\n',
    "quoted_comma": 'a,b,n\n1,2,"x, y"\n3,4,"say ""hi"""\n5,1,z\n',
    "literal_quote": 'a,b,n\n1,2,ab"c\n3,4,"ab"c\n5,1, "y\n',
    "unclosed_quote": 'a,b,n\n1,2,x\n3,4,"note\n5,1,y\n6,2,z\n',
    "unclosed_quote_at_end": 'a,b\n1,2\n3,"4',
    "unclosed_after_literal": 'a,b,n\n1,2,a"\n3,4,"x\n5,1,y\n',
    "big_field": "a,b,n\n1,2,x\n3,4," + "w" * 200_000 + "\n5,1,y\n",
    # '#' lines
    "hash_in_quoted": 'a,b,n\n1,2,"first\n# second"\n3,4,x\n5,1,y\n',
    "hash_in_quoted_and_comment": 'a,b,n\n# c\n1,2,"first\n# second"\n3,4,x\n# d\n5,1,y\n',
    "hash_in_doubled_quotes": 'a,b,n\n# c\n1,2,"say ""hi""\n# not a comment"\n3,4,x\n5,1,y\n',
    "hash_in_a_cell": "a,b\n1,#x\n2\n3,4\n5,1\n",
    "commented_out_row": "a,b\n1,2\n#3,4\n5,1\n6,2\n",
    "comment_with_comma": "a,b\n1,2\n  # run 2, after a power cut\n5,1\n6,2\n",
    "sheet_error": "a,b\n1,2\n#N/A,3\n5,1\n",
    "sheet_error_div0": "a,b\n1,2\n5,1\n#DIV/0!,3\n",
    "sheet_error_not_first": "a,b\n1,2\n3,#VALUE!\n5,1\n",
    "sheet_error_lower": "a,b\n1,2\n#n/a,3\n5,1\n",
    "sheet_error_bloomberg": "a,b\n1,2\n#N/A N/A,3\n5,1\n",
    "bang_comment": "a,b\n1,2\n#TODO!,3\n5,1\n6,2\n",
    # a quote in a comment must not pair with the data's quotes (a comment would become a row)
    "quote_in_comment": 'n,a,b\n# c1,"\n# c2,5,6\n"x",1,2\ny,3,4\nz,5,7\n',
    # a BOM inside the file (`cat header.csv data.csv`): pyarrow would drop it, csv does not
    "bom_in_body": "a,b\n\ufeff1,2\n3,4\n5,1\n",
    # the header
    "savetxt_header": "# a,b\n1.0e+00,2.0e+00\n3,4\n5,1\n",
    "numbers_header": "1,2\n3,4\n5,1\n",
    "blank_before_header": "\n  \n# c\n\r\n,\na,b\n1,2\n3,4\n5,1\n",
    # rows of empty cells, as spreadsheets write empty rows: skipped like blank lines
    "empty_rows": "a,b\n1,2\n,\n 3,4\n , \n5,1\n,\n,\n",
}


@pytest.mark.parametrize("name", sorted(_TRICKY))
@pytest.mark.parametrize("reader", ["pyarrow", "numpy"])
def test_fast_readers_agree_with_the_exact_reader(tmp_path, name: str, reader: str) -> None:
    if reader == "pyarrow":
        pytest.importorskip("pyarrow.csv")
    fast = {"pyarrow": csv_file._fast_pyarrow, "numpy": csv_file._fast_numpy}[reader]
    p = tmp_path / f"{name}.csv"
    p.write_bytes(_TRICKY[name].encode("utf-8"))
    for columns in (None, ["b"]):

        def read(f, columns=columns):
            try:
                t = csv_file._read_csv(p, columns, f)
                return t.names, t.values
            except DataError as exc:
                return str(exc)

        exact, got = read(False), read(fast)
        if isinstance(exact, str):
            assert got == exact
        else:
            assert not isinstance(got, str), got
            assert got[0] == exact[0]
            np.testing.assert_array_equal(got[1], exact[1])  # bit for bit: same parse of each cell


_CR_HINT = " (the file ends some lines with \\r alone, others with \\n: each ends a line)"
_SHEET = (
    "a spreadsheet error value (a cell the sheet could not compute), not a comment: fix or delete the row"
)

# what the exact reader (the reference) gives for column b: its values, or the error after "FILE: "
_EXPECTED = {
    "cr_only": [2, 4, 1],
    "cr_mixed": [2, 4, 1, 2],
    "cr_comment": [2, 4, 1],
    "stray_cr": "line 4: 1 field, expected 3" + _CR_HINT,
    "crlf_quoted": [2, 4, 1],
    "quoted_cr": [2, 4, 1],
    "quoted_lf": [2, 4, 1],
    "quoted_comma": [2, 4, 1],
    "literal_quote": [2, 4, 1],
    "unclosed_quote": "line 3: a quoted field opened here is never closed",
    "unclosed_quote_at_end": "line 3: a quoted field opened here is never closed",
    "unclosed_after_literal": "line 3: a quoted field opened here is never closed",
    "big_field": [2, 4, 1],
    "hash_in_quoted": [2, 4, 1],
    "hash_in_quoted_and_comment": [2, 4, 1],
    "hash_in_doubled_quotes": [2, 4, 1],
    "hash_in_a_cell": "column 'b', line 2: not a number: '#x'",
    "commented_out_row": [2, 1, 2],
    "comment_with_comma": [2, 1, 2],
    "sheet_error": f"line 3 starts with '#N/A', {_SHEET}",
    "sheet_error_div0": f"line 4 starts with '#DIV/0!', {_SHEET}",
    "sheet_error_not_first": "column 'b', line 3: not a number: '#VALUE!'",
    "sheet_error_lower": f"line 3 starts with '#n/a', {_SHEET}",
    "sheet_error_bloomberg": f"line 3 starts with '#N/A N/A', {_SHEET}",
    "bang_comment": [2, 1, 2],
    "quote_in_comment": [2, 4, 7],
    "bom_in_body": [2, 4, 1],
    "savetxt_header": (
        "line 2: the header line holds numbers, not column names; the column names may be in the "
        "comment on line 1 ('# a,b', as numpy.savetxt writes them; pass comments='' to savetxt)"
    ),
    "numbers_header": (
        "line 1: the header line holds numbers, not column names (the first line that is not a "
        "comment must name the columns)"
    ),
    "blank_before_header": [2, 4, 1],
    "empty_rows": [2, 4, 1],
}
# of those, the ones the fast readers read without the exact reader (numpy's loadtxt takes
# neither \r alone nor a text column, even one not used)
_FAST = {
    "pyarrow": {n for n, v in _EXPECTED.items() if not isinstance(v, str)}
    - {"empty_rows", "quote_in_comment", "bom_in_body"},
    "numpy": {"commented_out_row", "comment_with_comma", "blank_before_header", "bang_comment"},
}


@pytest.mark.parametrize("name", sorted(_EXPECTED))
def test_line_ends_quotes_and_hash_lines_read_as_documented(tmp_path, monkeypatch, name: str) -> None:
    p = tmp_path / f"{name}.csv"
    p.write_bytes(_TRICKY[name].encode("utf-8"))
    want = _EXPECTED[name]
    if isinstance(want, str):
        with pytest.raises(DataError) as info:
            csv_file._read_csv(p, ["b"], False)
        assert str(info.value) == f"{p}: {want}"
        return
    np.testing.assert_array_equal(csv_file._read_csv(p, ["b"], False).values[:, 0], want)

    def no_exact(*a, **k):
        raise AssertionError("the exact reader ran")

    monkeypatch.setattr(csv_file, "_exact", no_exact)
    for reader, names in _FAST.items():
        if name in names and (reader == "numpy" or csv_file._fast_reader() is csv_file._fast_pyarrow):
            fast = {"pyarrow": csv_file._fast_pyarrow, "numpy": csv_file._fast_numpy}[reader]
            np.testing.assert_array_equal(csv_file._read_csv(p, ["b"], fast).values[:, 0], want)


def test_csv_module_errors_and_the_field_limit_are_one_line(tmp_path, monkeypatch) -> None:
    # a cell above csv's default field_size_limit (131,072) is read, and the limit restored
    import csv

    before = csv.field_size_limit()
    p = tmp_path / "w.csv"
    p.write_text("a,b,wave\n" + "".join(f"{i},{i * i % 7},{'1;' * 100_000}\n" for i in range(5)))
    assert csv_file._read_csv(p, ["a", "b"], False).values.shape == (5, 2)
    assert csv_file.data_row_line(p, 5) == 6
    assert csv.field_size_limit() == before
    p.write_text(p.read_text().replace("\n3,2,", "\n3,x,"))
    with pytest.raises(DataError, match="column 'b', line 5: not a number: 'x'") as held:
        csv_file._read_csv(p, ["a", "b"], False)
    assert csv.field_size_limit() == before, held  # while the error (and its traceback) is held
    # a csv.Error (now only a cell above 2**31 - 1 characters) names the file and line: the
    # reader's limit lowered to show it
    monkeypatch.setattr(csv_file, "_FIELD_LIMIT", 1000)
    with pytest.raises(DataError) as info:
        csv_file._read_csv(p, ["a", "b"], False)
    assert str(info.value) == f"{p}: line 2: field larger than field limit (1000)"
    assert csv.field_size_limit() == before


def test_data_row_line_counts_cr_ends_comments_and_quoted_lines(tmp_path) -> None:
    p = tmp_path / "r.csv"
    # rows: 1 on line 3, 2 on line 5 (its quoted cell runs on to line 6, holding a '#' line), 3 on 8
    p.write_bytes(b'# c\ra,b,n\r1,2,x\r# d\n3,4,"p\n# q"\r\n,,\n5,1,y\n')
    assert [csv_file.data_row_line(p, k) for k in (1, 2, 3, 4)] == [3, 5, 8, None]
    assert csv_file._read_csv(p, ["a", "b"], False).values.tolist() == [[1, 2], [3, 4], [5, 1]]


def test_fast_reader_values_are_bit_identical_and_used(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(11)
    vals = rng.normal(size=(3000, 4)) * 10.0 ** rng.integers(-12, 12, size=(3000, 4))
    p = tmp_path / "r.csv"
    p.write_text("# gen\nw,x,y,z\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in vals))
    exact = csv_file._read_csv(p, None, False).values
    np.testing.assert_array_equal(exact, vals)

    def no_exact(*a, **k):
        raise AssertionError("the exact reader ran on a clean file")

    monkeypatch.setattr(csv_file, "_exact", no_exact)
    np.testing.assert_array_equal(csv_file._read_csv(p, None, csv_file._fast_numpy).values, vals)
    if csv_file._fast_reader() is csv_file._fast_pyarrow:
        np.testing.assert_array_equal(csv_file._read_csv(p, None, csv_file._fast_pyarrow).values, vals)
        np.testing.assert_array_equal(csv_file._read_csv(p, ["z", "w"], None).values, vals[:, [3, 0]])


# --- 6. progress: estimate and discover name the stage under way on a terminal -------------------


@pytest.mark.parametrize(("command", "tty", "flags", "shown"), [
    ("estimate", True, [], True),
    ("estimate", True, ["--quiet"], False),
    ("estimate", False, [], False),  # piped: quiet, as `dmca run` is
    ("discover", True, [], True),
    ("discover", True, ["-q"], False),
])  # fmt: skip
def test_stages_on_a_terminal_unless_quiet_or_piped(
    fallback, tmp_path: Path, capsys, monkeypatch, command, tty, flags, shown
) -> None:
    import sys

    data = _write(tmp_path / "d.csv", _sem(400))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    args = [command, "--data", str(data), "--estimator", "fallback", "--json", *flags]
    if command == "estimate":
        args += ["--treatment", "exposure", "--outcome", "counts", "--graph", "depth->exposure,depth->counts,exposure->counts"]  # fmt: skip
    assert main(args) == 0
    out, err = capsys.readouterr()
    json.loads(out)  # the display stays off stdout
    stages = (
        ["reading", "estimating the effect", "refutations", "bootstrap (SR9)", "discovery on each half"]
        if command == "estimate"
        else ["reading", "discovering the graph (PC over 3 columns)"]
    )
    for stage in stages:
        assert (stage in err) is shown, (stage, err)


def test_columns_named_by_numbers_are_read_when_columns_names_them(tmp_path) -> None:
    # wavelengths or channels as column names: not a header of numbers by mistake when named
    p = tmp_path / "spectra.csv"
    p.write_text("400,500\n1,2\n3,4\n5,1\n")
    t = csv_file._read_csv(p, ["400", "500"])
    assert list(t.names) == ["400", "500"]
    np.testing.assert_array_equal(t.values, [[1, 2], [3, 4], [5, 1]])
    with pytest.raises(DataError, match="the header line holds numbers"):
        csv_file._read_csv(p)


def test_a_stage_shows_a_path_with_brackets_as_it_is(fallback, tmp_path: Path, capsys, monkeypatch) -> None:
    import sys

    folder = tmp_path / "d[" / "x]"  # d[/x]/h.csv would be a closing markup tag to rich
    folder.mkdir(parents=True)
    _write(folder / "h[v2].csv", _sem(300))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.chdir(tmp_path)  # a short path: the line must fit the terminal's width
    assert main(["discover", "--data", "d[/x]/h[v2].csv", "--estimator", "fallback", "--json"]) == 0
    assert "reading d[/x]/h[v2].csv" in capsys.readouterr().err


def test_a_data_row_of_a_file_with_numeric_names_is_named_by_its_line(tmp_path) -> None:
    p = tmp_path / "n.csv"
    p.write_text("1,2,3\n# note\n1,2,3\n4,5,7\n7,8,8\n")
    named = csv_file.CsvDomain().name_data_error(
        "data row 2 has leverage 1", {"path": str(p), "columns": ["1", "2"]}
    )
    assert named == f"{p}: line 4 has leverage 1"


def test_a_rare_binary_treatment_writes_its_singular_refits_as_null(fallback, tmp_path, capsys) -> None:
    # 2 treated rows in 20: some 80% subsets hold neither, their refit is singular and the
    # subsets' figures NaN; json refused the whole results file and `estimate --json` over them
    rng = np.random.default_rng(0)
    t = np.zeros(20)
    t[rng.choice(20, 2, replace=False)] = 1
    w = rng.standard_normal(20)
    p = _write(tmp_path / "rare.csv", {"T": t, "W": w, "Y": t + w + rng.standard_normal(20)})
    argv = ["estimate", "--data", str(p), "--treatment", "T", "--outcome", "Y", "--graph", "W->Y,T->Y"]
    assert main([*argv, "--seed", "0", "--json", "--estimator", "fallback"]) == 0
    subsets = json.loads(capsys.readouterr().out)["refutations"]["data_subsets"]
    assert subsets["detail"]["singular"] > 0 and subsets["figure"] is None and not subsets["passed"]
    cfg = tmp_path / "rare.yaml"
    cfg.write_text(
        f"seed: 0\nestimator: fallback\noutput: {tmp_path / 'out'}\n"
        f"telemetry: {{path: {tmp_path / 'tel.jsonl'}}}\n"
        f"studies:\n  - {{domain: csv, params: {{path: {p}}}, treatment: T, outcome: Y, graph: [W->Y, T->Y]}}\n"
    )
    assert main(["run", str(cfg), "--quiet"]) == 0
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert row["refutations"]["data_subsets"]["detail"]["min"] is None
    assert "| 0.75 |" in (tmp_path / "out" / "summary.md").read_text()  # reliability: 3 of 4 checks
