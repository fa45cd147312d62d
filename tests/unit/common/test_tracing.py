"""Request ids and trace context of a served call, with tracing off and with an SDK tracer."""

import contextvars
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common import tracing
from common.config import ConfigError

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer(provider.get_tracer("test"))
    try:
        yield exporter
    finally:
        tracing.use_tracer(None)


def _in_call(metadata, method="/pkg.S/M"):
    """Run ``begin`` in a context of its own, as each served call has; its context and span."""

    def serve():
        span = tracing.begin(method, metadata)
        return tracing.current(), tracing.log_fields(), span

    return contextvars.copy_context().run(serve)


def test_with_tracing_off_the_callers_ids_pass_through_unchanged() -> None:
    call, fields, span = _in_call([("x-request-id", "req-1"), ("traceparent", PARENT)])
    assert span is None
    assert call.traceparent == PARENT
    assert fields == {
        "request_id": "req-1",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
    }


@pytest.mark.parametrize(
    "bad",
    [
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        "garbage",
    ],
)
def test_a_malformed_traceparent_is_dropped_and_a_missing_request_id_made(bad: str) -> None:
    call, fields, _ = _in_call([("traceparent", bad), ("x-request-id", "x" * 200)])
    assert call.traceparent == ""
    assert len(call.request_id) == 36  # made anew: the one sent was too long
    assert set(fields) == {"request_id"}


def test_outside_a_call_nothing_is_current() -> None:
    assert tracing.current() is None
    assert tracing.current_traceparent() == ""
    assert tracing.log_fields() == {}
    assert tracing.outgoing_metadata() == ()


def test_with_a_tracer_a_call_is_a_server_span_continuing_the_caller(
    exported: InMemorySpanExporter,
) -> None:
    call, fields, span = _in_call(
        [("x-request-id", "req-2"), ("traceparent", PARENT)], "/oms.v1.SchemaService/GetObjectType"
    )
    assert span is not None
    span.finish("NOT_FOUND", server_fault=False)
    (finished,) = exported.get_finished_spans()
    assert finished.name == "oms.v1.SchemaService/GetObjectType"
    assert finished.parent.span_id == int("b7ad6b7169203331", 16)
    assert finished.attributes["mesh.request_id"] == "req-2"
    assert finished.attributes["rpc.grpc.status_code"] == "NOT_FOUND"
    assert call.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert call.span_id == f"{finished.context.span_id:016x}"
    assert fields["span_id"] == call.span_id


def test_work_after_the_call_is_recorded_under_its_traceparent(
    exported: InMemorySpanExporter,
) -> None:
    tracing.record(
        "outbox.deliver",
        parent=PARENT,
        start_ns=1_000,
        end_ns=2_000,
        kind=tracing.SpanKind.PRODUCER,
        attributes={"mesh.outbox_seq": 3},
        failed="refused",
    )
    tracing.record(
        "nothing", parent="", start_ns=1, end_ns=2, kind=tracing.SpanKind.PRODUCER, attributes={}
    )
    (span,) = exported.get_finished_spans()
    assert (span.start_time, span.end_time) == (1_000, 2_000)
    assert span.parent.span_id == int("b7ad6b7169203331", 16)
    assert not span.status.is_ok


def test_the_exporter_follows_the_standard_variables() -> None:
    assert tracing.exporter_name({}) == "none"
    assert tracing.exporter_name({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == "otlp"
    assert tracing.exporter_name({"OTEL_TRACES_EXPORTER": "console"}) == "console"
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}
    assert tracing.exporter_name(disabled) == "none"
    assert tracing.configure("oms", {}) is False
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER"):
        tracing.configure("oms", {"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        tracing.configure(
            "oms", {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "x"}
        )
