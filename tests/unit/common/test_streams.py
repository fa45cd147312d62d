"""The bounded buffer between a publisher and one stream."""

import asyncio

import pytest

from common.streams import StreamBuffer


def test_items_come_out_in_order_then_the_end():
    async def scenario():
        buffer = StreamBuffer(3)
        for item in (1, 2):
            buffer.offer(item)
        buffer.end()
        buffer.offer(3)  # after the end: dropped
        return [await buffer.get() for _ in range(3)], buffer.overflowed

    assert asyncio.run(scenario()) == ([1, 2, None], False)


def test_a_reader_too_far_behind_gets_what_was_buffered_then_the_end():
    async def scenario():
        buffer = StreamBuffer(2)
        for item in range(5):  # the publisher never waits
            buffer.offer(item)
        got = [await buffer.get() for _ in range(3)]
        buffer.close()
        return got, buffer.overflowed

    assert asyncio.run(scenario()) == ([0, 1, None], True)


def test_a_reader_that_stopped_reading_is_cancelled_after_the_cutoff():
    async def stuck(buffer_box):
        buffer = StreamBuffer(1, cutoff_seconds=0.05)
        buffer_box.append(buffer)
        await asyncio.Event().wait()  # a write stuck in flow control, forever

    async def scenario():
        box = []
        task = asyncio.create_task(stuck(box))
        await asyncio.sleep(0)
        box[0].offer(1)
        box[0].offer(2)  # over capacity: ended, and the cut-off armed
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 2)
        return box[0].overflowed

    assert asyncio.run(scenario())


def test_closing_disarms_the_cutoff():
    async def scenario():
        buffer = StreamBuffer(1, cutoff_seconds=0.05)
        buffer.offer(1)
        buffer.offer(2)
        buffer.close()
        await asyncio.sleep(0.15)  # not cancelled: this very task would be
        return "survived"

    assert asyncio.run(scenario()) == "survived"
