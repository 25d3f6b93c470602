"""AES-GCM telemetry: what the emitter seals, the reader opens, in both modes, gzip on and off."""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path

import jsonschema
import pytest

pytestmark = pytest.mark.aes

CONTRACT = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).parents[1] / "sidrce" / "telemetry_contract.json").read_text())
)


@pytest.fixture
def enc(use_plugin):
    import dmca_aes_gcm.plugin as plugin

    use_plugin(plugin)
    return plugin.ENCRYPTOR


def key_env() -> dict[str, str]:
    return {"SIDRCE_AES_KEY": base64.b64encode(os.urandom(32)).decode()}


def records(n: int, start: int = 0) -> list[dict]:
    from dmca_core.telemetry import make_record

    return [
        make_record(
            domain="direct_lab",
            hypothesis="WIMP",
            step=i,
            infra_cost_usd=0.001 * i,
            qps=480.0,
            latency_p95_ms=180.0,
            run_id="run-7",
            causal_effect=0.25,
            ci_low=0.2,
            ci_high=0.3,
            estimator="fallback",
        )
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize("mode", ["line", "batch"])
@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_many_records_several_flushes(tmp_path: Path, enc, mode: str, gz: bool) -> None:
    from dmca_aes_gcm.scan import scan
    from dmca_core.telemetry import TelemetryEmitter

    env = key_env()
    path = tmp_path / "t.jsonl"
    want = records(1000)
    with TelemetryEmitter(path, encryption=mode, gzip=gz, environ=env, max_records=64) as em:
        for i, r in enumerate(want):
            em.emit(r)
            if i == 500:
                em.flush()  # an odd-sized batch in the middle
    data = path.read_bytes()
    # line mode gzips the file; batch mode compresses inside and the file stays JSON lines
    assert data[:2] == (b"\x1f\x8b" if gz and mode == "line" else b'{"')
    text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    envelopes = [json.loads(x) for x in text.splitlines()]
    # nothing of the records outside the ciphertext; base64 text may spell any short word by
    # chance, so look in the headers and in the decoded ciphertext bytes, not in the raw line
    for obj in envelopes:
        header = json.dumps({k: v for k, v in obj.items() if k not in ("ct", "n")}).encode()
        sealed = base64.b64decode(obj["ct"])
        for secret in (b"direct_lab", b"WIMP", b"run-7"):
            assert secret not in header and secret not in sealed
    assert len(envelopes) == (1001 if mode == "line" else 501 // 64 + 1 + 499 // 64 + 1)
    for obj in envelopes:
        CONTRACT.validate(obj)
        assert enc.is_envelope(obj)
    if mode == "batch":
        assert {e["z"] for e in envelopes} == {"zlib" if gz else "none"}
        assert [e["final"] for e in envelopes] == [False] * (len(envelopes) - 1) + [True]
        assert [e["b"] for e in envelopes] == list(range(len(envelopes)))
    else:
        assert [e["seq"] for e in envelopes] == list(range(1001))
        assert envelopes[-1].get("final") is True and "final" not in envelopes[0]
        assert len({e["n"] for e in envelopes}) == len(envelopes)  # fresh nonces
    got = scan(data, enc, env)
    assert got.rejections == [] and got.open_streams == []
    assert got.records == want


def test_two_streams_in_one_file_and_an_open_one(tmp_path: Path, enc) -> None:
    from dmca_aes_gcm.scan import scan
    from dmca_core.telemetry import TelemetryEmitter

    env = key_env()
    path = tmp_path / "t.jsonl"
    a = TelemetryEmitter(path, encryption="batch", environ=env, max_records=3)
    b = TelemetryEmitter(path, encryption="line", environ=env, max_records=2)
    for r in records(5):
        a.emit(r)
        b.emit(r)
    a.close()
    b.flush()  # b is still being written
    got = scan(path.read_bytes(), enc, env)
    assert got.rejections == []
    assert len(got.records) == 10
    assert [(s.mode, s.records) for s in got.open_streams] == [("line", 5)]
    b.close()
    assert scan(path.read_bytes(), enc, env).open_streams == []


def test_plaintext_line_in_an_encrypted_file_is_named(tmp_path: Path, enc) -> None:
    from dmca_aes_gcm.scan import scan
    from dmca_core.telemetry import TelemetryEmitter

    env = key_env()
    path = tmp_path / "t.jsonl"
    with TelemetryEmitter(path, encryption="line", environ=env) as em:
        em.emit(records(1)[0])
    with path.open("ab") as f:
        f.write(json.dumps(records(1)[0]).encode() + b"\n")
    got = scan(path.read_bytes(), enc, env)
    assert got.reasons() == ["unexpected_plaintext"] and len(got.records) == 1


def test_scan_into_a_closed_pipe_ends_quietly(tmp_path: Path, enc) -> None:
    import subprocess
    import sys

    from dmca_core.telemetry import TelemetryEmitter

    env = key_env()
    path = tmp_path / "t.jsonl"
    with TelemetryEmitter(path, encryption="line", environ=env, max_records=500) as em:
        for r in records(3000):  # far more than a pipe holds
            em.emit(r)
    proc = subprocess.run(
        f"{sys.executable} -m dmca_aes_gcm.scan {path} | head -c 300",
        shell=True,
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(proc.stdout) == 300 and proc.stderr == ""
