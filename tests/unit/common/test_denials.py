"""Refused calls are all counted, but reported at most twice per actor, method and window."""

from __future__ import annotations

import asyncio

from common.denials import Denial, DenialLog, denial_event


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _log(window: float = 10.0, max_keys: int = 100) -> tuple[DenialLog, list[Denial], Clock]:
    reported: list[Denial] = []
    clock = Clock()

    async def report(denial: Denial) -> None:
        reported.append(denial)

    return (
        DenialLog(report, window_seconds=window, max_keys=max_keys, monotonic=clock),
        reported,
        clock,
    )


async def _deny(log: DenialLog, actor: str = "mallory", method: str = "/x.v1.S/Write") -> None:
    await log.denied(
        method=method,
        code="PERMISSION_DENIED",
        reason="MISSING_PERMISSION",
        actor=actor,
        client_address="192.0.2.4",
    )


def test_the_first_refusal_is_reported_and_a_flood_becomes_one_count() -> None:
    async def scenario() -> list[Denial]:
        log, reported, clock = _log()
        for _ in range(1000):
            await _deny(log)
        assert [d.count for d in reported] == [1]
        await log.flush()  # the window is still open: nothing more yet
        assert len(reported) == 1
        clock.now = 10.0
        await log.flush()
        return reported

    reported = asyncio.run(scenario())
    assert [d.count for d in reported] == [1, 999]
    assert reported[1].first_ns <= reported[1].last_ns
    assert {(d.actor, d.method, d.client_address) for d in reported} == {
        ("mallory", "/x.v1.S/Write", "192.0.2.4")
    }


def test_a_refusal_after_the_window_reports_the_count_and_opens_a_new_one() -> None:
    async def scenario() -> list[int]:
        log, reported, clock = _log()
        await _deny(log)
        await _deny(log)
        await _deny(log)
        clock.now = 11.0
        await _deny(log)
        return [d.count for d in reported]

    assert asyncio.run(scenario()) == [1, 2, 1]


def test_actors_and_methods_are_counted_apart() -> None:
    async def scenario() -> list[tuple[str, str]]:
        log, reported, _ = _log()
        for actor in ("a", "b"):
            for method in ("/x.v1.S/One", "/x.v1.S/Two"):
                await _deny(log, actor, method)
                await _deny(log, actor, method)
        return [(d.actor, d.method) for d in reported]

    assert len(asyncio.run(scenario())) == 4


def test_held_windows_are_bounded_and_none_loses_its_count() -> None:
    async def scenario() -> tuple[list[Denial], DenialLog]:
        log, reported, _ = _log(max_keys=2)
        for actor in ("a", "b", "c"):
            await _deny(log, actor)
            await _deny(log, actor)
        await log.close()
        return reported, log

    reported, _ = asyncio.run(scenario())
    assert sum(d.count for d in reported) == 6
    assert sorted((d.actor, d.count) for d in reported) == [
        ("a", 1),
        ("a", 1),
        ("b", 1),
        ("b", 1),
        ("c", 1),
        ("c", 1),
    ]


def test_a_failing_record_does_not_change_the_refusal() -> None:
    async def failing(denial: Denial) -> None:
        raise OSError("disk full")

    asyncio.run(_deny(DenialLog(failing, window_seconds=1.0)))  # logs, does not raise


def test_the_event_names_the_method_and_carries_the_address() -> None:
    event = denial_event(
        Denial("/x.v1.S/Write", "UNAUTHENTICATED", "TOKEN_MISSING", "", "192.0.2.4", 3, 0, 5),
        service="oms",
    )
    assert (event.type, event.subject, event.actor, event.time_ns) == (
        "oms.call.denied",
        "rpcs/x.v1.S/Write",
        "",
        5,
    )
    assert event.body() == {
        "method": "/x.v1.S/Write",
        "code": "UNAUTHENTICATED",
        "reason": "TOKEN_MISSING",
        "count": 3,
        "first_time": "1970-01-01T00:00:00.000000000Z",
        "client_address": "192.0.2.4",
    }


def test_the_closing_task_sleeps_until_a_window_opens() -> None:
    async def scenario() -> tuple[int, int]:
        log, reported, clock = _log(window=0.01)
        flushes = 0
        flush = log.flush

        async def counted(*, everything: bool = False) -> None:
            nonlocal flushes
            flushes += 1
            await flush(everything=everything)

        log.flush = counted  # type: ignore[method-assign]
        task = asyncio.create_task(log.run())
        await asyncio.sleep(0.1)  # ten windows' time with nothing refused
        idle = flushes
        await _deny(log)
        await _deny(log)
        clock.now = 1.0
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(reported) == 2:
                break
        task.cancel()
        return idle, len(reported)

    idle, reported = asyncio.run(scenario())
    assert idle == 0
    assert reported == 2  # the burst's count, closed by the task alone
