"""routing.state.v1 codec and the partitioner used to map tenants to owned partitions."""

import ctypes
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.routing.state import changes_to_outputs, encode_record, murmur2, parse_key, partition_for, state_key

# Kafka's own test vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
JAVA_VECTORS = [
    ("21", -973932308),
    ("foobar", -790332482),
    ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    ("abc", 479470107),
]


@pytest.mark.parametrize(("text", "expected"), JAVA_VECTORS)
def test_murmur2_matches_the_java_client(text: str, expected: int) -> None:
    assert ctypes.c_int32(murmur2(text.encode())).value == expected


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_partition_is_in_range(key: bytes, partitions: int) -> None:
    assert 0 <= partition_for(key, partitions) < partitions


@given(st.text(), st.sampled_from(["agent", "contact", "queue", "tenant", "context"]), st.text())
def test_keys_round_trip_whatever_the_ids_contain(tenant: str, kind: str, entity: str) -> None:
    assert parse_key(state_key(tenant, kind, entity)) == (tenant, kind, entity)


def test_bad_keys_are_refused() -> None:
    for bad in (b"[1,2,3]", b'["a","b"]', b"{}"):
        with pytest.raises(ValueError):
            parse_key(bad)


def test_changes_become_records_and_tombstones() -> None:
    outs = changes_to_outputs([("acme", "agent", "a1", {"v": 1, "state": "ready"}),
                               ("acme", "contact", "c1", None)], "p.routing.state.v1")
    assert [o.topic for o in outs] == ["p.routing.state.v1"] * 2
    assert json.loads(outs[0].value or b"") == {"v": 1, "state": "ready"}
    assert outs[1].value is None and parse_key(outs[1].key or b"") == ("acme", "contact", "c1")
    # Records are canonical: the same record always encodes to the same bytes.
    assert encode_record({"b": 1, "a": 2}) == encode_record({"a": 2, "b": 1})


@given(st.text(max_size=30), st.text(max_size=12), st.text(max_size=40))
def test_state_key_is_the_json_array_whatever_the_ids_contain(tenant: str, kind: str, entity: str) -> None:
    try:
        expected = json.dumps([tenant, kind, entity], separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # lone surrogates: not encodable either way
        return
    assert state_key(tenant, kind, entity) == expected
    assert parse_key(expected) == (tenant, kind, entity)


def test_parse_key_takes_any_json_spelling_and_refuses_what_is_not_three_strings() -> None:
    assert parse_key(b'[ "acme" , "agent", "a\\u0022b" ]') == ("acme", "agent", 'a"b')
    assert parse_key('["acme","agent","é"]'.encode()) == ("acme", "agent", "é")
    for bad in (b'["acme","agent"]', b'["a","b","c","d"]', b'{"a":1}', b'["a","b",3]', b"[\"a\",\"b\",\"c\x01\"]"):
        with pytest.raises(ValueError):
            parse_key(bad)


_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(alphabet=st.characters(exclude_categories=["Cs"])))
_RECORDS = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@given(st.dictionaries(st.text(max_size=8), _RECORDS, max_size=8))
def test_state_records_read_back_as_written(record: dict[str, object]) -> None:
    assert json.loads(encode_record(record)) == record


_PLAIN_FLOATS = st.floats(min_value=-1e15, max_value=1e15).filter(lambda f: f == 0 or abs(f) >= 1e-4)


@given(st.dictionaries(st.text(max_size=8), st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                       | st.text(alphabet=st.characters(exclude_categories=["Cs"])) | _PLAIN_FLOATS
                       | st.lists(st.text(max_size=8), max_size=3), max_size=8))
def test_state_records_are_the_stdlib_bytes(record: dict[str, object]) -> None:
    """orjson writes what json.dumps(sort_keys, compact, ensure_ascii=False) wrote before it, for the
    values the engine holds (timestamps, durations, counters, ids). Floats under 1e-4 differ in the
    exponent's form (1.2e-7 against 1.2e-07): the same number, read back equal (above)."""
    assert encode_record(record) == json.dumps(record, separators=(",", ":"), ensure_ascii=False,
                                               sort_keys=True).encode()


def test_what_orjson_refuses_goes_through_the_stdlib() -> None:
    assert encode_record({"n": 2**70}) == b'{"n":1180591620717411303424}'
    assert json.loads(encode_record({"k": {1: "a"}})) == {"k": {"1": "a"}}
