"""The compiled line-envelope scanner (dmca_aes_gcm/_envscan.c) against the exact parser
(json.loads and ``envelope.parse``): whatever it takes, the exact parser takes with the same key
id, stream id, counter, final flag, nonce and ciphertext; what it gives up on is left to msgspec
and the line-by-line reader (whose reports ``test_sidrce_collect_fast_enc.py`` compares).
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from conftest import mutated, require_compiled
from test_sidrce_collect_fast_enc import rows, sealed

pytestmark = pytest.mark.aes


@pytest.fixture
def scan() -> Any:
    from dmca_aes_gcm import block

    require_compiled(block._envscan, "dmca_aes_gcm._envscan")
    return block._envscan.scan_lines


def exact(line: bytes) -> Any:
    """The exact reading of one envelope line, or None where it refuses it."""
    from dmca_aes_gcm.envelope import parse
    from dmca_core.errors import TelemetryRejected

    try:
        obj = json.loads(line)
        return parse(obj) if isinstance(obj, dict) else None
    except (ValueError, UnicodeDecodeError, TelemetryRejected):
        return None


def agree(scan: Any, lines: list[bytes]) -> bool:
    """Asserts that a block the scanner takes is read alike by the exact parser; True if taken."""
    from dmca_aes_gcm.envelope import _KID, _SID

    got = scan(b"".join(lines), len(lines))
    # the ids' patterns are the caller's check (block.py, through the reader's names)
    if got is None or not (_KID.match(got[0]) and _SID.match(got[1])):
        return False
    kid, sid, first, final, nonces, cts = got
    for i, line in enumerate(lines):
        p = exact(line)
        assert p is not None, line
        assert (p.mode, p.kid, p.sid, p.counter) == ("line", kid, sid, first + i)
        assert p.final == (final and i == len(lines) - 1)
        assert (p.nonce, p.ct) == (nonces[i], cts[i])
    return True


def test_the_writers_lines_are_taken_as_the_exact_parser_reads_them(scan: Any) -> None:
    lines = sealed(rows(300), per=7)  # the last one is the stream's end marker
    assert agree(scan, lines)
    assert agree(scan, lines[:-1]) and agree(scan, lines[5:90])
    assert scan(b"".join(lines), len(lines))[3] is True


def test_blocks_outside_one_plain_run_are_given_up(scan: Any) -> None:
    lines = sealed(rows(20), per=5)
    other = sealed(rows(20, seed=1), per=5)  # another stream (new stream id)
    swapped = [*lines[:3], lines[4], lines[3], *lines[5:]]
    marked = lines[2].replace(b',"n":', b',"final":true,"n":', 1)  # an end marker mid-stream
    assert agree(scan, [marked]) and agree(scan, lines[:2] + [marked])
    for block in (
        [*lines[:5], *other[5:10]],  # a stream id changes mid-block
        swapped,  # counters not running on by one
        [lines[-1], *lines[:3]],  # the end marker before the stream's end
        [*lines[:2], marked, lines[3]],  # a final envelope, then the stream runs on
        lines[:3] + [lines[3].rstrip(b"\n") + b" \n"],  # not the writer's spelling
        lines[:3] + [lines[3].replace(b'"seq":', b'"seq": ')],
    ):
        assert scan(b"".join(block), len(block)) is None
    data = b"".join(lines[:4])
    assert scan(data, 3) is None and scan(data, 5) is None  # more or fewer lines than said
    assert scan(data[:-1], 4) is None and scan(b"", 1) is None


def test_base64_must_be_canonical(scan: Any) -> None:
    """A ciphertext whose padding bits are set decodes to the same bytes; the exact reader calls
    it tampered, and so must the scanner (by giving it up)."""
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    lines = sealed(rows(40), per=40, final=False)
    padded = [ln for ln in lines if ln.endswith(b'="}\n')]
    assert padded  # some ciphertext lengths need padding
    for ln in padded[:5]:
        at = ln.rindex(b"=", 0, ln.index(b'="}')) - 1 if ln.endswith(b'=="}\n') else len(ln) - 5
        c = chr(ln[at])
        changed = ln[:at] + b64[b64.index(c) + 1].encode() + ln[at + 1 :]
        assert exact(changed) is None and scan(changed, 1) is None
        assert agree(scan, [ln])


def test_random_mutations_never_pass_a_line_the_exact_parser_refuses(scan: Any) -> None:
    rng = random.Random(5)
    lines = sealed(rows(60), per=3)
    alphabet = b'{}",:=+/0123456789ABCDEFabcdefnqtru \\\x00\xff'
    taken = 0
    for i in range(20000):
        text = mutated(lines[i % len(lines)].rstrip(b"\n"), rng, alphabet, 1 + i % 2)
        taken += agree(scan, [text.replace(b"\n", b" ") + b"\n"])
    assert taken > 1000  # a changed ciphertext byte is still a well-formed envelope
