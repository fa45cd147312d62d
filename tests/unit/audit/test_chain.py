"""The hash chain's canonical encoding and its verification."""

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from audit import chain
from audit.events import parse_event
from common.canonical import canonical_json

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


def event(n=0, **changes):
    fields = {
        "id": f"e-{n}",
        "source": "/oms",
        "type": "oms.branch.created",
        "subject": "branches/main",
        "time_ns": 1_700_000_000_000_000_000 + n,
        "actor": "alice",
        "data": {"n": n},
    }
    return parse_event(**{**fields, **changes})


@given(
    text=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
    data=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    sequence=st.integers(1, 2**62),
)
def test_encoding_is_the_canonical_json_of_the_documented_object(text, data, sequence):
    e = event(data=data, subject=text, actor=f'{text}\u00e9"\\')
    encoded = chain.encode(e, sequence=sequence, recorded_ns=123, previous_hash=chain.GENESIS)
    documented = {
        "actor": e.actor,
        "data": data,
        "id": e.id,
        "previous_hash": chain.GENESIS,
        "recorded_time": 123,
        "sequence": sequence,
        "source": e.source,
        "subject": e.subject,
        "time": e.time_ns,
        "type": e.type,
    }
    assert encoded == canonical_json(documented).encode()
    stored = chain.link(e, sequence=sequence, recorded_ns=123, previous_hash=chain.GENESIS)
    assert stored.hash == hashlib.sha256(encoded).hexdigest()


ATTRIBUTES = {
    "datacontenttype": "application/json",
    "dataschema": "https://example.com/s.json",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "rojo=00f067aa0ba902b7",
}


@given(
    present=st.sets(st.sampled_from(sorted(ATTRIBUTES))),
    data=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_attributes_are_in_the_encoding_only_when_present(present, data):
    if "tracestate" in present:
        present.add("traceparent")
    given_attributes = {name: ATTRIBUTES[name] for name in present}
    e = event(data=data, **given_attributes)
    encoded = chain.encode(e, sequence=7, recorded_ns=123, previous_hash=chain.GENESIS)
    documented = {
        "actor": e.actor,
        "data": data,
        "id": e.id,
        "previous_hash": chain.GENESIS,
        "recorded_time": 123,
        "sequence": 7,
        "source": e.source,
        "subject": e.subject,
        "time": e.time_ns,
        "type": e.type,
        **given_attributes,
    }
    assert encoded == canonical_json(documented).encode()


def test_an_event_without_time_is_chained_at_its_recorded_time():
    untimed = event(time_ns=None)
    stored = chain.link(untimed, sequence=1, recorded_ns=555, previous_hash=chain.GENESIS)
    assert stored.event.time_ns == stored.time_ns == 555
    assert (
        stored.hash
        == chain.link(
            event(time_ns=555), sequence=1, recorded_ns=555, previous_hash=chain.GENESIS
        ).hash
    )


def build(count):
    stored, previous = [], chain.GENESIS
    for n in range(1, count + 1):
        link = chain.link(event(n), sequence=n, recorded_ns=n, previous_hash=previous)
        stored.append(link)
        previous = link.hash
    return stored


def run(stored, start=1, previous=chain.GENESIS, end=None):
    verifier = chain.ChainVerifier(start_sequence=start, previous_hash=previous)
    for item in stored:
        if not verifier.feed(item):
            break
    verifier.finish(end_sequence=end if end is not None else start + len(stored) - 1)
    return verifier


def test_intact_chain_verifies():
    verifier = run(build(10))
    assert verifier.broken is None and verifier.verified == 10


def test_each_kind_of_break_is_found_first():
    stored = build(10)
    changed = list(stored)
    changed[3] = stored[3]._replace(event=event(4, actor="mallory"))
    found = run(changed).broken
    assert (found.sequence, found.kind) == (4, chain.BreakKind.HASH_MISMATCH)

    relinked = list(stored)
    relinked[5] = chain.link(event(6), sequence=6, recorded_ns=6, previous_hash="a" * 64)
    found = run(relinked).broken
    assert (found.sequence, found.kind) == (6, chain.BreakKind.PREVIOUS_HASH_MISMATCH)

    missing = stored[:4] + stored[5:]
    verifier = run(missing, end=10)
    assert (verifier.broken.sequence, verifier.broken.kind) == (5, chain.BreakKind.SEQUENCE_MISSING)
    assert verifier.verified == 4

    truncated = run(stored[:8], end=10).broken
    assert (truncated.sequence, truncated.kind) == (9, chain.BreakKind.SEQUENCE_MISSING)


def test_a_range_starts_from_its_predecessor_hash():
    stored = build(10)
    assert run(stored[4:], start=5, previous=stored[3].hash).broken is None
    assert run(stored[4:], start=5, previous=chain.GENESIS).broken.kind is (
        chain.BreakKind.PREVIOUS_HASH_MISMATCH
    )
