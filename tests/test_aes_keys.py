"""AES-GCM telemetry keys: configuration errors, rotation, wrong keys, secrecy, the nonce bound."""

from __future__ import annotations

import argparse
import base64
import json
import traceback
from pathlib import Path

import pytest

pytestmark = pytest.mark.aes


@pytest.fixture
def enc(use_plugin):
    import dmca_aes_gcm.plugin as plugin

    use_plugin(plugin)
    return plugin.ENCRYPTOR


def b64key(fill: int) -> str:
    return base64.b64encode(bytes([fill]) * 32).decode()


def emit(path: Path, env: dict, n: int = 3, mode: str = "line") -> None:
    from dmca_core.telemetry import TelemetryEmitter, make_record

    with TelemetryEmitter(path, encryption=mode, environ=env) as em:
        for i in range(n):
            em.emit(
                make_record(
                    domain="d", hypothesis="h", step=i, infra_cost_usd=0, qps=0, latency_p95_ms=0, run_id="r"
                )
            )


def scan(path: Path, enc, env: dict):
    from dmca_aes_gcm.scan import scan as _scan

    return _scan(path.read_bytes(), enc, env)


def test_single_key_kid_is_its_fingerprint(tmp_path: Path, enc) -> None:
    import hashlib

    env = {"SIDRCE_AES_KEY": b64key(1)}
    emit(tmp_path / "t.jsonl", env)
    first = json.loads((tmp_path / "t.jsonl").read_bytes().splitlines()[0])
    assert first["kid"] == hashlib.sha256(bytes([1]) * 32).hexdigest()[:8]


def test_rotation_keeps_old_files_readable(tmp_path: Path, enc) -> None:
    path = tmp_path / "t.jsonl"
    old = {"SIDRCE_AES_KEY": b64key(1)}
    emit(path, old, mode="batch")
    # rotate: the new key first; the old one listed bare (its id is its fingerprint) ...
    rotated = {"SIDRCE_AES_KEYS": f"k2:{b64key(2)},{b64key(1)}"}
    emit(path, rotated)
    kids = [json.loads(x)["kid"] for x in path.read_bytes().splitlines()]
    assert kids[-1] == "k2" and kids[0] != "k2"
    got = scan(path, enc, rotated)
    assert got.rejections == [] and len(got.records) == 6
    # ... the old key alone cannot read the new stream, nor the new key alone the old one
    assert set(scan(path, enc, old).reasons()) == {"unknown_kid"}
    assert set(scan(path, enc, {"SIDRCE_AES_KEYS": f"k2:{b64key(2)}"}).reasons()) == {"unknown_kid"}


def test_wrong_key_under_the_right_id_fails_authentication(tmp_path: Path, enc) -> None:
    path = tmp_path / "t.jsonl"
    emit(path, {"SIDRCE_AES_KEYS": f"prod:{b64key(1)}"})
    got = scan(path, enc, {"SIDRCE_AES_KEYS": f"prod:{b64key(9)}"})
    assert got.records == [] and set(got.reasons()) == {"tampered"}


def test_reader_without_key_names_the_variables(tmp_path: Path, enc) -> None:
    path = tmp_path / "t.jsonl"
    emit(path, {"SIDRCE_AES_KEY": b64key(1)})
    got = scan(path, enc, {})
    assert set(got.reasons()) == {"no_key"}
    assert got.rejections[0].detail == "set SIDRCE_AES_KEY or SIDRCE_AES_KEYS"


def test_writer_without_key_refuses_before_writing(tmp_path: Path, enc) -> None:
    from dmca_core.errors import ConfigError

    with pytest.raises(ConfigError, match="SIDRCE_AES_KEY or SIDRCE_AES_KEYS"):
        emit(tmp_path / "t.jsonl", {})
    assert not (tmp_path / "t.jsonl").exists()


SECRET = base64.b64encode(b"S" * 31).decode()  # a plausible key of the wrong length


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIDRCE_AES_KEY": SECRET}, "SIDRCE_AES_KEY: the key decodes to 31 bytes"),
        ({"SIDRCE_AES_KEY": SECRET[:-3] + "!!="}, "SIDRCE_AES_KEY: the key is not valid base64"),
        (
            {"SIDRCE_AES_KEYS": f"a:{b64key(1)},b:{SECRET}"},
            "SIDRCE_AES_KEYS: entry 2 (kid 'b') decodes to 31",
        ),
        ({"SIDRCE_AES_KEYS": f"a:{b64key(1)},a:{b64key(2)}"}, "key id 'a' appears twice"),
        ({"SIDRCE_AES_KEYS": f"a|b:{b64key(1)}"}, "entry 1 has a bad key id"),
        ({"SIDRCE_AES_KEYS": f"a:{b64key(1)},"}, "entry 2 is empty"),
        ({"SIDRCE_AES_KEY": b64key(1), "SIDRCE_AES_KEYS": f"a:{b64key(2)}"}, "set only one of"),
    ],
)
def test_bad_keys_are_one_clear_error_without_key_material(
    tmp_path: Path, enc, env: dict, message: str
) -> None:
    from dmca_core.errors import ConfigError

    for make in (lambda: enc.reader(environ=env), lambda: emit(tmp_path / "t.jsonl", env)):
        with pytest.raises(ConfigError) as info:
            make()
        assert message in str(info.value)
        text = "".join(traceback.format_exception(info.value))
        for value in env.values():
            for part in value.replace(":", ",").split(","):
                if len(part) > 8:
                    assert part not in text


def test_no_key_material_in_reprs(enc) -> None:
    from dmca_aes_gcm.keys import load_keyring

    env = {"SIDRCE_AES_KEYS": f"a:{b64key(1)},b:{b64key(2)}"}
    ring = load_keyring(env)
    objects = [
        ring,
        ring.primary,
        enc,
        enc.reader(environ=env),
        enc.writer("line", gzip=False, environ=env),
        enc.writer("batch", gzip=True, environ=env),
    ]
    for obj in objects:
        text = repr(obj) + str(obj)
        assert b64key(1)[:12] not in text and b64key(2)[:12] not in text and "\\x01" not in text


def test_nonce_budget_refuses_and_keeps_the_records(tmp_path: Path, enc, monkeypatch) -> None:
    from dmca_aes_gcm import budget as budget_mod
    from dmca_core.errors import ConfigError
    from dmca_core.telemetry import TelemetryEmitter, make_record

    monkeypatch.setattr(budget_mod, "budget", budget_mod.NonceBudget(limit=5))
    env = {"SIDRCE_AES_KEY": b64key(3)}
    path = tmp_path / "t.jsonl"
    em = TelemetryEmitter(path, encryption="line", environ=env, max_records=100)
    for i in range(3):
        em.emit(
            make_record(
                domain="d", hypothesis="h", step=i, infra_cost_usd=0, qps=0, latency_p95_ms=0, run_id="r"
            )
        )
    em.flush()  # 3 messages
    for i in range(3, 6):
        em.emit(
            make_record(
                domain="d", hypothesis="h", step=i, infra_cost_usd=0, qps=0, latency_p95_ms=0, run_id="r"
            )
        )
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="NIST SP 800-38D limit of 5.*Rotate"):
        em.flush()  # 3 more would make 6 > 5
    assert path.read_bytes() == before and len(em._buf) == 3  # nothing half-written, nothing dropped
    em._stop.set()
    em._closed = True  # abandon without the atexit flush trying again
    em._handle.close()


def test_keygen_prints_a_working_key(capsys, enc, tmp_path: Path) -> None:
    from dmca_aes_gcm.keygen import KEYGEN
    from dmca_aes_gcm.keys import fingerprint
    from dmca_core.plugins import commands

    assert commands()["keygen"] is KEYGEN
    parser = argparse.ArgumentParser()
    KEYGEN.configure(parser)
    assert KEYGEN.run(parser.parse_args([])) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("SIDRCE_AES_KEY=")
    key = out[0].split("=", 1)[1]
    assert f"key id {fingerprint(base64.b64decode(key))}" in out[1]
    env = {"SIDRCE_AES_KEY": key}
    emit(tmp_path / "t.jsonl", env)
    assert len(scan(tmp_path / "t.jsonl", enc, env).records) == 3

    assert KEYGEN.run(parser.parse_args(["--kid", "2024q3"])) == 0
    var, entry = capsys.readouterr().out.splitlines()[0].split("=", 1)
    assert var == "SIDRCE_AES_KEYS" and entry.startswith("2024q3:")
    env = {var: entry}
    emit(tmp_path / "u.jsonl", env)
    assert json.loads((tmp_path / "u.jsonl").read_bytes().splitlines()[0])["kid"] == "2024q3"


def test_truncated_base64_in_an_envelope(tmp_path: Path, enc) -> None:
    path = tmp_path / "t.jsonl"
    env = {"SIDRCE_AES_KEY": b64key(1)}
    emit(path, env, n=5)
    lines = path.read_bytes().splitlines(keepends=True)
    obj = json.loads(lines[1])
    obj["ct"] = obj["ct"][:-5]
    lines[1] = json.dumps(obj).encode() + b"\n"
    obj = json.loads(lines[2])
    obj["n"] = obj["n"][:-4]
    lines[2] = json.dumps(obj).encode() + b"\n"
    from dmca_aes_gcm.scan import scan as _scan

    got = _scan(b"".join(lines), enc, env)
    assert got.reasons() == ["tampered", "tampered", "missing_seq"]
    assert "base64" in got.rejections[0].detail and "nonce" in got.rejections[1].detail
