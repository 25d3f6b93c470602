"""The AES reader's block and two-part API: a partial reader's state joins the first part's reader
only where the streams meet exactly, and a refused join changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_sidrce_collect_fast_enc import ENV, rows, sealed

pytestmark = pytest.mark.aes


@pytest.fixture
def enc(use_plugin: Any) -> Any:
    import dmca_aes_gcm.plugin as plugin

    use_plugin(plugin)
    return plugin.ENCRYPTOR


def feed(reader: Any, lines: list[bytes], line0: int = 1) -> None:
    for i, ln in enumerate(lines):
        reader.feed(json.loads(ln), line0 + i)


def summary(reader: Any) -> Any:
    return [(r.reason, r.line, r.detail) for r in reader.finish()], [
        (s.sid, s.envelopes, s.records, s.last_line) for s in reader.open_streams
    ]


def test_partial_reader_joins_where_the_stream_runs_on(enc: Any) -> None:
    lines = sealed(rows(60), per=7)
    del lines[40]  # a gap in the second part
    whole = enc.reader(environ=ENV)
    feed(whole, lines)
    first, second = enc.reader(environ=ENV), enc.reader(environ=ENV)
    second.start_partial()
    feed(first, lines[:25])
    # the second part's lines are numbered from 1; join shifts them
    res = second.feed_block(b"".join(lines[25:40]), 1)  # a block from mid-stream
    assert res is not None and res.count == 15
    res.commit()
    feed(second, lines[40:], 16)
    assert first.join(second.state(), 25)
    assert summary(first) == summary(whole)
    assert summary(whole)[0] == [("missing_seq", 41, summary(whole)[0][0][2])]


def test_a_refused_join_changes_nothing(enc: Any) -> None:
    from dmca_aes_gcm.reader import NeedsEarlier

    lines = sealed(rows(30))
    first, second = enc.reader(environ=ENV), enc.reader(environ=ENV)
    second.start_partial()
    feed(first, lines[:10])
    feed(second, lines[12:20])  # lines 11-12 are in neither part
    before = summary(first)
    assert not first.join(second.state(), 12)
    assert summary(first) == before
    with pytest.raises(NeedsEarlier):  # below the first counter it saw: a verdict it cannot give
        second.feed(json.loads(lines[5]), 9)
    assert second.feed_block(lines[5], 9) is None
    done = enc.reader(environ=ENV)
    feed(done, lines)  # ends with the final envelope: nothing may run on after it
    other = enc.reader(environ=ENV)
    other.start_partial()
    feed(other, lines[:3])
    assert not done.join(other.state(), len(lines))
    with pytest.raises(ValueError):
        other.start_partial()
