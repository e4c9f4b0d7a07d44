"""pyoci.jsonio (json's C accelerator called directly) against the json package itself,
and the other stand-ins the lean create/run/exec path uses instead of stdlib modules."""

from __future__ import annotations

import datetime
import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyoci import jsonio, unixsock
from pyoci.capabilities import CapSets
from pyoci.container.create import utc_timestamp

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(JSON_VALUES)
def test_dumps_is_json_dumps(value: object) -> None:
    assert jsonio.dumps(value) == json.dumps(value)


@given(JSON_VALUES, st.sampled_from(["", " ", "\n", " \t\r\n "]))
def test_loads_is_json_loads(value: object, ws: str) -> None:
    text = ws + json.dumps(value) + ws
    for doc in (text, text.encode()):
        expected, got = json.loads(doc), jsonio.loads(doc)
        assert repr(got) == repr(expected)  # repr: NaN != NaN, and -0.0 == 0.0


@pytest.mark.parametrize("doc", ["", "{", '{"a": 1} x', "[1,]", '{"a" 1}', "\ufeff{}", "nan",
                                 b"\xff{}", "1 2", "[" * 10])
def test_bad_documents_fail_as_json_does(doc: str | bytes) -> None:
    with pytest.raises(Exception) as expected:
        json.loads(doc)
    with pytest.raises(Exception) as got:
        jsonio.loads(doc)
    assert type(got.value) is type(expected.value)
    assert str(got.value) == str(expected.value)


def test_json_decode_error_is_jsons() -> None:
    assert jsonio.JSONDecodeError is json.JSONDecodeError
    with pytest.raises(AttributeError):
        jsonio.nothing  # noqa: B018


def test_other_json_texts() -> None:
    for doc in ("NaN", "-Infinity", '"\\u00e9\\n"', "1e400", "-0", "12345678901234567890"):
        assert repr(jsonio.loads(doc)) == repr(json.loads(doc))
    assert jsonio.loads(b'\n{"a": [1, 2.5, null, true]}\n') == {"a": [1, 2.5, None, True]}
    assert jsonio.loads(bytearray(b"[1]")) == [1]
    assert jsonio.loads('"\\ud800"') == json.loads('"\\ud800"')  # a lone surrogate
    for doc in ('"\u00e9"'.encode("utf-16"), '[1]'.encode("utf-32-le"), b"\xef\xbb\xbf{}"):
        assert jsonio.loads(doc) == json.loads(doc)


def test_unencodable_fails_as_json_does() -> None:
    circular: list = []
    circular.append(circular)
    for value in (object(), {(1, 2): 3}, circular, {1: {2}}):
        with pytest.raises(Exception) as expected:
            json.dumps(value)
        with pytest.raises(Exception) as got:
            jsonio.dumps(value)
        assert type(got.value) is type(expected.value)
        assert str(got.value) == str(expected.value)
    # after a failure, the next call starts clean (no stale circular-reference markers)
    shared = [1]
    assert jsonio.dumps([shared, shared]) == "[[1], [1]]"


def test_dumps_of_odd_but_valid_values() -> None:
    for value in ("é\n\x00", {1: 2, None: 3, 2.5: True}, [math.inf, -math.inf, math.nan],
                  {"a": (1, 2)}, 10 ** 30, -0.0, 1e-320):
        assert jsonio.dumps(value) == json.dumps(value)


@given(st.integers(min_value=0, max_value=253402300799_999_999_999))
def test_utc_timestamp_is_datetimes_isoformat(ns: int) -> None:
    seconds, micros = divmod(ns // 1000, 1_000_000)
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(microsecond=micros)
    assert utc_timestamp(ns) == when.isoformat().replace("+00:00", "Z")


def test_utc_timestamp_edges() -> None:
    assert utc_timestamp(0) == "1970-01-01T00:00:00Z"
    assert utc_timestamp(1_700_000_000_000_001_999) == "2023-11-14T22:13:20.000001Z"
    ns = random.randrange(10 ** 18, 2 * 10 ** 18)
    assert utc_timestamp(ns).endswith("Z") and "T" in utc_timestamp(ns)


def test_capsets_compare_by_value() -> None:
    a = CapSets(frozenset({1}), frozenset({2}))
    assert a == CapSets(frozenset({1}), frozenset({2}), frozenset(), frozenset(), frozenset())
    assert a != CapSets(frozenset({1}))
    assert hash(a) == hash(CapSets(frozenset({1}), frozenset({2})))
    assert CapSets() == CapSets() and CapSets().ambient == frozenset()
    assert repr(CapSets()) == ("CapSets(bounding=frozenset(), effective=frozenset(), "
                               "inheritable=frozenset(), permitted=frozenset(), "
                               "ambient=frozenset())")


def test_fds_pass_over_unix_sockets() -> None:
    import os

    a, b = unixsock.socketpair(unixsock.SOCK_STREAM)
    r, w = os.pipe()
    try:
        unixsock.send_fds(a, [b"x"], [r, w])
        msg, fds, _, _ = unixsock.recv_fds(b, 16, 2)
        assert msg == b"x" and len(fds) == 2
        os.write(fds[1], b"ok")
        assert os.read(r, 2) == b"ok"
        for fd in fds:
            os.close(fd)
        unixsock.send_fds(a, [b"y"], [r])  # more fds offered than sent: the one there is
        msg, fds, _, _ = unixsock.recv_fds(b, 16, 3)
        assert msg == b"y" and len(fds) == 1
        os.close(fds[0])
    finally:
        for fd in (r, w):
            os.close(fd)
        a.close()
        b.close()
