"""Following a telemetry file through rotation: a renamed file still being written is read to its
end before the new one; a copy put in place by rename is not counted twice; an over-long line is
rejected without being held in memory (server, collect and validate alike)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sidrce import source
from sidrce.collector import Aggregator, collect
from sidrce.source import MAX_LINE, Follower


def rec(i: int, d: str = "d") -> bytes:
    r = {
        "domain": d,
        "hypothesis": "H",
        "step": i,
        "intervention": "-",
        "infra_cost_usd": float(i % 7 + 1),
        "qps": 10.0 + i % 5,
        "latency_p95_ms": 20.0 + i % 3,
    }
    return json.dumps(r).encode() + b"\n"


def follow(path: Path, drain: float) -> tuple[Aggregator, Follower]:
    agg = Aggregator()
    fol = Follower(path, lambda gen: agg.file(f"{path}#{gen}"), drain_seconds=drain)
    return agg, fol


def test_a_renamed_file_still_written_is_read_to_its_end_first(tmp_path: Path) -> None:
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0.5)
    writer = path.open("ab")  # like `dmca run`: its descriptor stays open across the rename
    try:
        for i in range(12):
            writer.write(rec(i))
        writer.flush()
        fol.poll()
        agg.flush()
        assert agg.cols.n == 12
        path.rename(tmp_path / "tel.jsonl.1")
        path.write_bytes(rec(1000, d="new"))
        for i in range(12, 80):  # the run goes on writing to the renamed file
            writer.write(rec(i))
            writer.flush()
            fol.poll()
            assert fol.draining
        deadline = time.monotonic() + 10
        while fol.draining or fol.generation < 2:
            assert time.monotonic() < deadline, "the old file was never let go"
            time.sleep(0.05)
            fol.poll()
    finally:
        writer.close()
        fol.close()
    agg.flush()
    # every line of the renamed file, then the new one, as `sidrce collect tel.jsonl.1 tel.jsonl`
    assert agg.cols.n == 81
    assert agg.report() == collect([tmp_path / "tel.jsonl.1", path])


def test_the_new_file_waits_only_while_the_old_one_is_written(tmp_path: Path) -> None:
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0.3)
    path.write_bytes(rec(1))
    fol.poll()
    time.sleep(0.4)  # idle longer than the grace period before the rename: no wait at all
    path.rename(tmp_path / "tel.jsonl.1")
    path.write_bytes(rec(2, d="new"))
    fol.poll()
    fol.close()
    agg.flush()
    assert agg.cols.n == 2 and not fol.draining


def test_replace_by_rename_of_a_copy_is_not_counted_again(tmp_path: Path) -> None:
    src = tmp_path / "src.jsonl"
    path = tmp_path / "h.jsonl"
    agg, fol = follow(path, drain=0)
    total = 0
    for n in (10, 25, 40):  # `cp src .h.tmp && mv .h.tmp h.jsonl`, the source growing in between
        src.write_bytes(b"".join(rec(i) for i in range(n)))
        tmp = tmp_path / ".h.tmp"
        shutil.copyfile(src, tmp)
        tmp.rename(path)
        total = n
        fol.poll()
    fol.close()
    agg.flush()
    assert agg.cols.n == total == collect([path])["count"]
    assert fol.generation == 1  # one stream: each copy continued it


def test_a_new_file_with_other_lines_is_a_rotation_not_a_copy(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    agg, fol = follow(path, drain=0)
    path.write_bytes(b"".join(rec(i) for i in range(10)))
    fol.poll()
    tmp = tmp_path / ".h.tmp"
    # as long as the old file, same last line, another first line: not a continuation
    tmp.write_bytes(rec(0, d="e") + b"".join(rec(i) for i in range(1, 10)) + rec(10))
    tmp.rename(path)
    fol.poll()
    fol.close()
    agg.flush()
    assert agg.cols.n == 21 and fol.generation == 2


def test_an_over_long_line_is_a_not_json_rejection(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    with path.open("wb") as f:
        f.write(rec(1))
        f.write(b"x" * (3 * MAX_LINE) + b"\n")  # inside one read
        f.write(rec(2))
        f.write(b"{" * MAX_LINE + b"\n")  # exactly the limit: an ordinary (bad) line
        f.write(b"y" * (MAX_LINE + 1) + b"\n")
        f.write(rec(3))
        f.write(b"z" * (2 * MAX_LINE))  # the end, without newline
    got = collect([path])
    assert got["count"] == 3 and got["rejected"] == {"not_json": 4}
    lines = [(e["line"], e["detail"]) for e in got["rejected_examples"]]
    assert lines[0] == (2, f"line of {3 * MAX_LINE} bytes, over the {MAX_LINE}-byte limit")
    assert [n for n, _ in lines] == [2, 4, 5, 7] and "over the" not in lines[1][1]
    out = subprocess.run(
        [sys.executable, "-m", "sidrce.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert (
        out.stdout.splitlines()[0]
        == f"{path}:2: not_json (line of {3 * MAX_LINE} bytes, over the {MAX_LINE}-byte limit)"
    )
    assert out.stderr.endswith("3 valid records, 4 bad lines\n")


def test_the_follower_holds_no_over_long_line(tmp_path: Path) -> None:
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0)
    path.write_bytes(rec(1))
    fol.poll()
    with path.open("ab") as f:
        for _ in range(6):  # written in pieces, each poll sees a part of the line
            f.write(b"x" * (MAX_LINE // 2))
            f.flush()
            fol.poll()
            assert fol.stream is not None and len(fol.stream._pending) <= MAX_LINE
        f.write(b"\n" + rec(2))
    fol.poll()
    fol.close()
    agg.flush()
    assert agg.cols.n == 2 and agg.rejected == {"not_json": 1}
    assert agg.examples[0]["line"] == 2 and f"{3 * MAX_LINE} bytes" in agg.examples[0]["detail"]


def _peak_rss_kib(path: Path) -> int:
    code = (
        "import resource, sys; from sidrce.collector import collect; collect([sys.argv[1]]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_reading_a_huge_line_does_not_grow_memory(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_bytes(rec(1) + b"x\n")
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as f:
        f.write(rec(1))
        block = b"x" * (8 << 20)
        for _ in range(12):  # 96 MiB without a newline
            f.write(block)
    base = _peak_rss_kib(small)
    peak = _peak_rss_kib(huge)
    # reads are 8 MiB; holding the line would take 96 MiB and more for its copies
    assert peak - base < 48 * 1024, (base, peak)


def _settle(fol: Follower, seconds: float) -> None:
    """Poll for ``seconds``: longer than the drain period, so a rotation would have been taken."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fol.poll()
        time.sleep(0.02)


def test_a_copy_shorter_than_what_was_read_is_not_counted_again(tmp_path: Path) -> None:
    # `cp f f.tmp`, the run appends to f and those lines are read, then `mv f.tmp f`: the copy
    # lacks the last lines read, but every byte it has is the old file's
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0.3)
    writer = path.open("ab")
    try:
        writer.write(b"".join(rec(i) for i in range(10)))
        writer.flush()
        fol.poll()
        tmp = tmp_path / "tel.jsonl.tmp"
        shutil.copyfile(path, tmp)
        writer.write(b"".join(rec(i) for i in range(10, 20)))
        writer.flush()
        fol.poll()
        agg.flush()
        assert agg.cols.n == 20
        tmp.rename(path)
        _settle(fol, 0.6)
        agg.flush()
        assert agg.cols.n == 20 and fol.generation == 1 and not fol.draining
    finally:
        writer.close()
    with path.open("ab") as again:  # the next run appends to the copy now in place
        again.write(b"".join(rec(i) for i in range(20, 25)) + b"junk\n")
    _settle(fol, 0.1)
    fol.close()
    agg.flush()
    ref = tmp_path / "ref.jsonl"
    ref.write_bytes(b"".join(rec(i) for i in range(25)))
    assert agg.cols.n == 25 and agg.report()["groups"] == collect([ref])["groups"]
    # the junk line is named by its line in the file now at the path, as `sidrce validate` would
    assert agg.rejected == {"not_json": 1} and agg.examples[0]["line"] == 16 == collect([path])["count"] + 1


def test_a_shorter_file_with_other_bytes_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0)
    path.write_bytes(b"".join(rec(i) for i in range(20)))
    fol.poll()
    tmp = tmp_path / "tel.jsonl.tmp"
    # the first ten lines but one byte changed in the last of them: not the old file's bytes
    tmp.write_bytes(b"".join(rec(i) for i in range(9)) + rec(9).replace(b'"H"', b'"K"'))
    tmp.rename(path)
    fol.poll()
    fol.close()
    agg.flush()
    assert agg.cols.n == 30 and fol.generation == 2


def test_a_shorter_file_beside_a_renamed_one_is_a_rotation(tmp_path: Path) -> None:
    # the old file is still in a directory (renamed, not replaced): the new one's lines are new,
    # even when a run wrote the same bytes again
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0)
    path.write_bytes(b"".join(rec(i) for i in range(20)))
    fol.poll()
    path.rename(tmp_path / "tel.jsonl.1")
    path.write_bytes(b"".join(rec(i) for i in range(10)))
    fol.poll()
    fol.close()
    agg.flush()
    assert agg.cols.n == 30 and fol.generation == 2
    assert agg.report() == collect([tmp_path / "tel.jsonl.1", path])


def test_a_longer_file_that_differs_only_in_the_middle_is_not_a_copy(tmp_path: Path) -> None:
    # same first 4 KiB, same bytes just before the offset read: only a whole comparison tells
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0)
    lines = [rec(i) for i in range(100)]
    path.write_bytes(b"".join(lines))
    fol.poll()
    lines[50] = rec(50, d="x")  # as long as before
    tmp = tmp_path / "tel.jsonl.tmp"
    tmp.write_bytes(b"".join(lines) + rec(100))
    assert tmp.read_bytes()[:4096] == path.read_bytes()[:4096]
    tmp.rename(path)
    fol.poll()
    fol.close()
    agg.flush()
    assert agg.cols.n == 201 and fol.generation == 2


def test_a_shorter_copy_ending_inside_a_line_keeps_that_line_unfinished(tmp_path: Path) -> None:
    # the copy was taken while the writer was half-way through line 11
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0)
    line11 = rec(10)
    writer = path.open("ab")
    try:
        writer.write(b"".join(rec(i) for i in range(10)) + line11[:30])
        writer.flush()
        tmp = tmp_path / "tel.jsonl.tmp"
        shutil.copyfile(path, tmp)
        writer.write(line11[30:] + rec(11))
        writer.flush()
        fol.poll()
        tmp.rename(path)
        fol.poll()
    finally:
        writer.close()
    fol.close()
    agg.flush()
    alone = collect([path])  # the file now at the path: ten records and a cut line 11
    assert agg.cols.n == 12 and fol.generation == 1
    assert agg.rejected == alone["rejected"] == {"truncated": 1}
    assert agg.examples[0]["line"] == alone["rejected_examples"][0]["line"] == 11


@pytest.mark.parametrize("between", [10, 0], ids=["shorter-copy", "whole-copy"])
def test_a_writer_holding_the_old_file_after_a_copy_is_adopted_is_read_on(
    tmp_path: Path, between: int
) -> None:
    # the docs' example: `cp ops.jsonl .tmp`, `dmca run` appends by the descriptor it keeps open,
    # `mv .tmp ops.jsonl`; the run goes on appending to the old file, now in no directory
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0.3)
    writer = path.open("ab")
    try:
        writer.write(b"".join(rec(i) for i in range(10)))
        writer.flush()
        fol.poll()
        tmp = tmp_path / "tel.jsonl.tmp"
        shutil.copyfile(path, tmp)
        writer.write(b"".join(rec(i) for i in range(10, 10 + between)))
        writer.flush()
        fol.poll()
        tmp.rename(path)
        fol.poll()  # the copy is adopted here
        assert fol.generation == 1 and fol.stream is not None
        assert fol.stream.ino == (path.stat().st_dev, path.stat().st_ino)
        n_old = 10 + between
        for i in range(n_old, 30):  # the run goes on, a line at a time
            writer.write(rec(i))
            writer.flush()
            fol.poll()
        writer.write(b"junk old\n")  # line 31 of the old file
        writer.flush()
        _settle(fol, 0.6)
    finally:
        writer.close()
    agg.flush()
    assert agg.cols.n == 30 and fol.generation == 1 and not fol._behind
    with path.open("ab") as again:  # the next run opens the path: the copy
        again.write(b"".join(rec(i) for i in range(30, 35)) + b"junk new\n")
    _settle(fol, 0.1)
    fol.close()
    agg.flush()
    ref = tmp_path / "ref.jsonl"
    ref.write_bytes(b"".join(rec(i) for i in range(35)))
    # every record once: the count and every group's figures are those of one file holding each
    assert agg.cols.n == 35 and agg.report()["groups"] == collect([ref])["groups"]
    # the old file's line by its number there (as a renamed file's), the copy's by its own
    assert agg.rejected == {"not_json": 2}
    assert [e["line"] for e in agg.examples] == [31, 16]
    assert collect([path])["rejected_examples"][0]["line"] == 16


def test_an_unfinished_line_in_both_the_old_file_and_its_copy_is_reported_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0.2)
    path.write_bytes(b"".join(rec(i) for i in range(10)) + rec(10)[:30])  # cut inside line 11
    fol.poll()
    tmp = tmp_path / "tel.jsonl.tmp"
    shutil.copyfile(path, tmp)
    tmp.rename(path)
    _settle(fol, 0.4)  # the old file is let go: its cut line is the copy's too
    assert fol.generation == 1 and not fol._behind
    fol.close()
    agg.flush()
    assert agg.cols.n == 10 and agg.rejected == {"truncated": 1}
    assert agg.examples[0]["line"] == 11


def test_a_near_copy_is_compared_once_while_it_stays_different(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = source._same_bytes

    def counted(fd_a: int, fd_b: int, end: int) -> tuple[int, int] | int:
        calls.append(end)
        return real(fd_a, fd_b, end)

    monkeypatch.setattr(source, "_same_bytes", counted)
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=30)  # the old file is drained for the whole test
    lines = [rec(i) for i in range(100)]
    path.write_bytes(b"".join(lines))
    fol.poll()
    near = list(lines)
    near[50] = rec(50, d="x")  # as long as before: only a whole comparison tells
    tmp = tmp_path / "tel.jsonl.tmp"
    tmp.write_bytes(b"".join(near) + rec(100))
    tmp.rename(path)
    for _ in range(5):
        fol.poll()
    assert len(calls) == 1 and fol.draining
    with path.open("ab") as f:  # it grows: the byte found different is still different
        f.write(rec(101))
    for _ in range(3):
        fol.poll()
    assert len(calls) == 1
    # made a true copy in place (same file, same size): compared again, and adopted
    at = sum(len(x) for x in lines[:50])
    with path.open("r+b") as f:
        f.seek(at)
        f.write(lines[50])
    fol.poll()
    assert len(calls) == 2 and not fol.draining and fol.generation == 1
    fol.close()
    agg.flush()
    assert agg.cols.n == 102 == collect([path])["count"]


@pytest.mark.parametrize("shorter", [False, True])
def test_a_line_a_copy_holds_unfinished_and_the_old_file_finishes_counts_once(
    tmp_path: Path, shorter: bool
) -> None:
    # `cp f f.tmp && mv f.tmp f` while the writer is half-way through line 6; it then finishes
    # that line (and writes another) in the old file, by the descriptor it holds. ``shorter``:
    # more of line 6 was written and read between the copy and the mv
    path = tmp_path / "tel.jsonl"
    agg, fol = follow(path, drain=0.2)
    line6 = rec(5)
    writer = path.open("ab")
    try:
        writer.write(b"".join(rec(i) for i in range(5)) + line6[:10])
        writer.flush()
        fol.poll()
        tmp = tmp_path / "tel.jsonl.tmp"
        shutil.copyfile(path, tmp)
        writer.write(line6[10:20])
        writer.flush()
        if shorter:
            fol.poll()
        tmp.rename(path)
        fol.poll()
        writer.write(line6[20:] + rec(6))
        writer.flush()
        _settle(fol, 0.5)
    finally:
        writer.close()
    fol.close()
    agg.flush()
    assert agg.cols.n == 7 and agg.rejected == {}
