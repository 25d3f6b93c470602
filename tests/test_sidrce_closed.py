"""`--closed`: a batch-encrypted stream whose final envelope was deleted is `truncated` when every
writer has finished, and an open stream (reported as such) otherwise."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from sidrce.cli import main

pytestmark = pytest.mark.aes

KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def closed_file(tmp_path: Path, use_plugin: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    import dmca_aes_gcm.plugin as plugin
    from dmca_core.telemetry import TelemetryEmitter, make_record

    use_plugin(plugin)
    monkeypatch.setenv("SIDRCE_AES_KEY", KEY)
    monkeypatch.delenv("SIDRCE_AES_KEYS", raising=False)
    path = tmp_path / "ops.jsonl"
    em = TelemetryEmitter(path, encryption="batch", environ={"SIDRCE_AES_KEY": KEY}, max_records=4)
    for i in range(10):
        em.emit(
            make_record(
                domain="d",
                hypothesis="h",
                step=i,
                infra_cost_usd=1.0,
                qps=2.0,
                latency_p95_ms=3.0,
                run_id="r",
            )
        )
    em.close()
    return path


def test_a_closed_stream_without_its_final_envelope(
    closed_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = closed_file.read_bytes().splitlines(keepends=True)
    assert main(["validate", "--closed", str(closed_file)]) == 0  # whole: nothing to say
    capsys.readouterr()
    closed_file.write_bytes(b"".join(lines[:-1]))  # delete the final envelope
    last = len(lines) - 1  # the last envelope left

    assert main(["validate", "--closed", str(closed_file)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{closed_file}:{last}: truncated") and "no final envelope" in out
    assert len(out.splitlines()) == 1

    # without --closed the stream may still be being written: no error, but it is reported open
    assert main(["validate", str(closed_file)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"{closed_file}:{last}: open stream" in err and "1 open streams" in err
    assert main(["collect", "--json", str(closed_file)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["open_streams"] == 1 and report["rejected"] == {}
    (ex,) = report["open_stream_examples"]
    assert ex["file"] == str(closed_file) and ex["line"] == last and ex["mode"] == "batch"
    assert report["count"] == ex["records"] == 8  # two batches of 4 are left

    assert main(["collect", "--json", "--closed", str(closed_file)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["open_streams"] == 0 and report["rejected"] == {"truncated": 1}
    assert main(["gate", "--closed", "--max-fti", "2", str(closed_file)]) == 0  # the gate judges FTI
