"""The one representation of a moment converts both ways without loss."""

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from common import times

MOMENTS = st.integers(min_value=-(2**62), max_value=2**62)


@given(MOMENTS)
def test_a_protobuf_timestamp_round_trip_is_exact(moment):
    stamp = times.to_timestamp(moment)
    assert 0 <= stamp.nanos < times.SECOND
    assert times.from_timestamp(stamp) == moment


def test_a_timestamp_before_the_epoch_keeps_positive_nanos():
    stamp = times.to_timestamp(-1)
    assert (stamp.seconds, stamp.nanos) == (-1, 999_999_999)
    assert times.from_timestamp(timestamp_pb2.Timestamp(seconds=-1, nanos=999_999_999)) == -1


def test_datetimes_convert_to_the_microsecond_in_any_zone():
    moment = datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC)
    expected = 1_796_117_400_123_456_000
    assert times.from_datetime(moment) == expected
    assert times.from_datetime(moment.astimezone(timezone(timedelta(hours=9)))) == expected
    assert times.from_datetime(moment.replace(tzinfo=None)) == expected


def test_rfc3339_text_is_utc_and_truncated_to_the_digits_asked():
    moment = 1_796_117_400_123_456_789
    assert times.to_rfc3339(moment) == "2026-12-01T09:30:00.123456789Z"
    assert times.to_rfc3339(moment, digits=3) == "2026-12-01T09:30:00.123Z"
    assert times.to_rfc3339(moment, digits=0) == "2026-12-01T09:30:00Z"
    assert times.to_rfc3339(-1) == "1969-12-31T23:59:59.999999999Z"


def test_durations_and_jwt_seconds():
    assert times.seconds(1.5) == 1_500_000_000
    assert times.whole_seconds(1_999_999_999) == 1
    assert abs(times.now() - times.from_datetime(datetime.now(UTC))) < times.seconds(5)
