"""The intake: how many calls a node starts per turn of its event loop (agree.runtime.intake)."""

from __future__ import annotations

import asyncio

import pytest

from agree.runtime.intake import Intake


async def _turns(
    intake: Intake, callers: int, cancel: frozenset[int] = frozenset()
) -> dict[int, int]:
    """Each caller's turn (0 = the turn they all arrived in), ``cancel`` giving up waiting."""
    turn = 0
    running = True

    def count() -> None:
        nonlocal turn
        turn += 1
        if running:
            asyncio.get_running_loop().call_soon(count)

    started: dict[int, int] = {}

    async def caller(i: int) -> None:
        wait = intake.admit()
        if wait is not None:
            await wait
        started[i] = turn

    asyncio.get_running_loop().call_soon(count)
    tasks = [asyncio.ensure_future(caller(i)) for i in range(callers)]
    await asyncio.sleep(0)  # every caller asks in this one turn
    for i in cancel:
        tasks[i].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    running = False
    return started


async def test_a_crowd_starts_a_bounded_number_per_turn_in_arrival_order() -> None:
    started = await _turns(Intake(per_turn=10), 95)
    per_turn: dict[int, int] = {}
    for turn in started.values():
        per_turn[turn] = per_turn.get(turn, 0) + 1
    assert len(started) == 95
    assert max(per_turn.values()) <= 10
    assert len(per_turn) >= 10  # spread over ten turns at least
    assert all(started[a] <= started[b] for a, b in zip(range(94), range(1, 95), strict=True))


async def test_few_callers_start_at_once() -> None:
    started = await _turns(Intake(per_turn=10), 10)
    assert len(set(started.values())) == 1


async def test_a_caller_that_gives_up_waiting_takes_no_place() -> None:
    intake = Intake(per_turn=5)
    started = await _turns(intake, 20, cancel=frozenset({7, 8, 9}))
    assert set(started) == set(range(20)) - {7, 8, 9}
    assert intake.waiting == 0


def test_at_least_one_call_per_turn() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Intake(per_turn=0)
