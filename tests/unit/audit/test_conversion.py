"""Any Event a client can send converts to a valid domain event or to InvalidArgument.

Conversion never crashes, and a valid event comes back out of the log unchanged.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.chain import GENESIS, link
from audit.convert import event_to_domain, event_to_message
from audit.v1 import audit_pb2
from common.errors import InvalidArgument

values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
texts = st.text(max_size=300)
ATTRIBUTES = ("specversion", "datacontenttype", "dataschema", "traceparent", "tracestate")
attribute_values = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.sampled_from(
        [
            "1.0",
            "application/json",
            "https://example.com/schema.json",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "rojo=00f067aa0ba902b7",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    id=texts,
    source=texts,
    type=st.one_of(texts, st.just("oms.branch.created")),
    subject=st.text(max_size=600),
    actor=texts,
    seconds=st.one_of(st.none(), st.integers(-(2**40), 2**40)),
    nanos=st.integers(0, 999_999_999),
    data=st.dictionaries(st.text(max_size=8), values, max_size=4),
    attributes=st.fixed_dictionaries({name: attribute_values for name in ATTRIBUTES}),
)
def test_conversion_never_crashes_and_round_trips(
    id, source, type, subject, actor, seconds, nanos, data, attributes
):
    message = audit_pb2.Event(
        id=id, source=source, type=type, subject=subject, actor=actor, **attributes
    )
    if seconds is not None:
        message.time.seconds, message.time.nanos = seconds, nanos
    message.data.update(data)
    try:
        event = event_to_domain(message, "event")
    except InvalidArgument as exc:
        assert exc.violations
        assert all(v.field.startswith("event.") for v in exc.violations)
        return
    back = event_to_message(link(event, sequence=1, recorded_ns=0, previous_hash=GENESIS))
    assert (back.id, back.source, back.type, back.subject, back.actor) == (
        id,
        source,
        type,
        subject,
        actor,
    )
    assert back.time == message.time  # recorded at 0, the unset time's value, when absent
    assert back.data == message.data
    assert back.specversion == "1.0"
    assert [getattr(back, name) for name in ATTRIBUTES[1:]] == [
        attributes[name] for name in ATTRIBUTES[1:]
    ]
