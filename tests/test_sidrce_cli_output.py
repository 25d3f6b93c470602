"""What the `sidrce` command says to a person: a closed pipe is not an error, a collect that took
nothing says why, the studies table says which figure is the latest and which the median, and
``--version``."""

from __future__ import annotations

import base64
import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sidrce import __version__, source
from sidrce.cli import main
from sidrce.collector import collect
from sidrce.metrics import registry_for


def rec(i: int, d: str = "d", **kw: Any) -> dict[str, Any]:
    r = {"domain": d, "hypothesis": "H", "step": i, "intervention": "-"}
    return r | {"infra_cost_usd": 1.0 + i % 3, "qps": 2.0, "latency_p95_ms": 3.0} | kw


def line(r: Any) -> bytes:
    return json.dumps(r).encode() + b"\n"


def test_validate_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # `sidrce validate tam.jsonl | head -3`: far more bad lines than a pipe buffer holds
    path = tmp_path / "tam.jsonl"
    path.write_bytes(b"".join(b"junk\n" if i % 2 else line(rec(i)) for i in range(200_000)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDRCE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidrce.cli", "validate", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()  # what `head` does after its third line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1, err  # the verdict on the whole file, as without the pipe
    assert head[0] == f"{path}:2: not_json (Expecting value)\n".encode()
    # only the summary: no "cannot read telemetry: Broken pipe", no "Exception ignored"
    assert err == "100000 valid records, 100000 bad lines\n"


def test_a_failing_sink_is_not_a_failed_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"junk\n" + line(rec(1)))

    def closed_stdout(*a: Any) -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    from sidrce.collector import Aggregator

    with pytest.raises(BrokenPipeError):
        Aggregator(on_reject=closed_stdout).read([path])
    # and a read that fails is still one line naming the file
    real = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        if offset > 0:
            raise OSError(errno.EIO, "Input/output error")
        return real(fd, min(n, 5), offset)

    monkeypatch.setattr(source.os, "pread", pread)
    from dmca_core.errors import UsageError

    with pytest.raises(UsageError, match=f"^{path}: cannot read telemetry: Input/output error$"):
        collect([path])


def test_collect_that_took_nothing_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a results file given by mistake: pretty-printed JSON, one object not a record
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"studies": [{"effect": 1.5, "ci": [1, 2]}] * 3}, indent=2) + "\n")
    report = collect([results])
    assert main(["collect", str(results)]) == 1
    out, err = capsys.readouterr()
    # stdout as before: tools parse it
    total = sum(report["rejected"].values())
    assert out.splitlines()[0] == f"records 0  rejected {total}" + "".join(
        f" {k}={v}" for k, v in report["rejected"].items()
    )
    first = report["rejected_examples"][0]
    lines = err.splitlines()
    assert lines[0] == f"sidrce: first rejected line: {results}:1: {first['reason']} ({first['detail']})"
    assert len(lines) == 2 and f"is {results} a DMCA telemetry file" in lines[1]
    # --json: stdout stays one JSON document; the hint is on stderr
    assert main(["collect", "--json", str(results)]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["count"] == 0 and err.count("\n") == 2
    # some records accepted: no hint, whatever else was rejected
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"junk\n" * 5 + line(rec(1)))
    assert main(["collect", str(mixed)]) == 0
    assert capsys.readouterr().err == ""
    # every line rejected, but as records with a bad field: the first one named, field and all
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(line(rec(1, qps=-1)) + line(rec(2, qps=-2)))
    assert main(["collect", str(bad)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"sidrce: first rejected line: {bad}:1: schema (") and "qps" in lines[0]
    assert "DMCA telemetry file" in lines[1]


@pytest.mark.aes
def test_collect_under_the_wrong_key_names_the_key_id_never_a_key(
    tmp_path: Path, use_plugin: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_sidrce_collect_fast_enc import KEY, rows, sealed

    import dmca_aes_gcm.plugin as plugin
    from dmca_aes_gcm.keys import fingerprint

    use_plugin(plugin)
    path = tmp_path / "enc.jsonl"
    path.write_bytes(b"".join(sealed(rows(19), per=1)))
    wrong = bytes(range(100, 132))
    wrong_b64 = base64.b64encode(wrong).decode()
    monkeypatch.delenv("SIDRCE_AES_KEYS", raising=False)
    monkeypatch.setenv("SIDRCE_AES_KEY", wrong_b64)
    assert main(["collect", str(path)]) == 1
    out, err = capsys.readouterr()
    n = path.read_bytes().count(b"\n")  # the records' envelopes and the stream's final one
    assert out.splitlines()[0] == f"records 0  rejected {n} unknown_kid={n}"
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"sidrce: first rejected line: {path}:1: unknown_kid (")
    assert repr(fingerprint(KEY)) in lines[0]  # the key id the file was sealed under
    assert "SIDRCE_AES_KEY" in lines[1]
    for secret in (wrong_b64, base64.b64encode(KEY).decode(), wrong.hex(), KEY.hex()):
        assert secret not in err


def test_studies_table_says_which_figure_is_latest_and_which_median(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.jsonl"
    study = {"ci_low": -1.0, "ci_high": 1.0, "SR9": 0.5, "DI2": 0.25}
    rows = [
        rec(0, causal_effect=0.1, reliability_score=0.25, **study),
        rec(1, causal_effect=0.7, reliability_score=1.0, **study),
        rec(2, causal_effect=-0.3, reliability_score=1.0, **study | {"ci_low": -2.0}),  # the latest
    ]
    path.write_bytes(b"".join(map(line, rows)))
    assert main(["collect", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(ln for ln in out if ln.startswith("domain") and "effect" in ln)
    for label in ("latest effect", "median reliability", "median SR9", "median DI2"):
        assert label in header, label
    row = out[out.index(header) + 1].split()
    # latest: the last record's effect and CI; median: over the three records
    assert row[2:5] == ["-0.3", "[-2,", "1]"] and row[5:] == ["1.000", "0.500", "0.250"]
    # each value sits under its label
    text = out[out.index(header) + 1]
    for label, value in (("latest effect", "-0.3"), ("median reliability", "1.000"), ("median DI2", "0.250")):
        assert text.index(value) + len(value) == header.index(label) + len(label), label


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"sidrce {__version__}\n"
    # the same version /metrics reports in sidrce_build_info
    info = [
        s
        for f in registry_for(lambda: collect([])).collect()
        for s in f.samples
        if s.name == "sidrce_build_info"
    ]
    assert info and info[0].labels["version"] == __version__
