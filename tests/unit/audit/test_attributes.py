"""The optional CloudEvents attributes and the tracing extension: kept when well formed."""

import pytest

from audit.events import parse_event
from common.errors import InvalidArgument

VALID = {
    "id": "e-1",
    "source": "/oms",
    "type": "oms.branch.created",
    "subject": "branches/main",
    "time_ns": 1_700_000_000_123_456_789,
    "actor": "alice",
    "data": {"a": 1},
}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def refused(**attributes):
    with pytest.raises(InvalidArgument) as caught:
        parse_event(**VALID, **attributes)
    return {(v.field, v.reason) for v in caught.value.violations}


def test_every_attribute_is_kept():
    event = parse_event(
        **VALID,
        specversion="1.0",
        datacontenttype='application/json; charset="utf-8"',
        dataschema="https://schemas.example.com/oms/branch-created.json#v2",
        traceparent=TRACEPARENT,
        tracestate="rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,tenant@vendor=x",
    )
    assert event.datacontenttype == 'application/json; charset="utf-8"'
    assert event.dataschema == "https://schemas.example.com/oms/branch-created.json#v2"
    assert event.traceparent == TRACEPARENT
    assert event.tracestate == "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,tenant@vendor=x"


def test_absent_attributes_are_empty():
    event = parse_event(**VALID)
    assert (event.datacontenttype, event.dataschema, event.traceparent, event.tracestate) == (
        ("",) * 4
    )


@pytest.mark.parametrize("version", ["0.3", "1", "1.0 ", "2.0"])
def test_only_spec_version_1_0(version):
    assert refused(specversion=version) == {("event.specversion", "UNSUPPORTED_VERSION")}


@pytest.mark.parametrize(
    "media_type",
    [
        "application/json",
        "text/plain;charset=utf-8",
        "application/cloudevents+json",
        'a/b; x="y;z"',
    ],
)
def test_good_media_types(media_type):
    assert parse_event(**VALID, datacontenttype=media_type).datacontenttype == media_type


@pytest.mark.parametrize(
    "media_type",
    ["json", "application/", "/json", "application/json;", "text/plain; charset", "a b/c", "a/b\n"],
)
def test_bad_media_types(media_type):
    assert refused(datacontenttype=media_type) == {("event.datacontenttype", "INVALID_FORMAT")}


@pytest.mark.parametrize(
    "uri", ["https://example.com/s.json", "urn:example:schema:1", "file:///s.json?v=1%20"]
)
def test_good_schema_uris(uri):
    assert parse_event(**VALID, dataschema=uri).dataschema == uri


@pytest.mark.parametrize(
    "uri",
    ["/relative/path", "https://exa mple.com", "https://x/%zz", "1http://x", "x:" + "a" * 2047],
)
def test_bad_schema_uris(uri):
    assert refused(dataschema=uri) == {("event.dataschema", "INVALID_FORMAT")}


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
    ],
)
def test_good_traceparents(traceparent):
    assert parse_event(**VALID, traceparent=traceparent).traceparent == traceparent


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # uppercase
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  # 00 has nothing more
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short trace id
        "4bf92f3577b34da6a3ce929d0e0e4736",
    ],
)
def test_bad_traceparents(traceparent):
    assert refused(traceparent=traceparent) == {("event.traceparent", "INVALID_FORMAT")}


@pytest.mark.parametrize(
    "tracestate",
    ["a=1,a=2", "Upper=1", "a=", "a=x,b", "a=" + "x" * 257, ",".join(f"k{n}=v" for n in range(33))],
)
def test_bad_tracestates(tracestate):
    assert refused(traceparent=TRACEPARENT, tracestate=tracestate) == {
        ("event.tracestate", "INVALID_FORMAT")
    }


def test_tracestate_needs_a_traceparent():
    assert refused(tracestate="a=1") == {("event.tracestate", "TRACEPARENT_REQUIRED")}


def test_violations_name_the_event_in_a_batch():
    with pytest.raises(InvalidArgument) as caught:
        parse_event(**VALID, dataschema="nope", specversion="0.3", field_prefix="events[2]")
    assert sorted(v.field for v in caught.value.violations) == [
        "events[2].dataschema",
        "events[2].specversion",
    ]
