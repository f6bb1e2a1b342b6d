"""The simulated network: delays, loss, duplication, reordering, partitions, replay."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from agree.testing.simnet import NetConfig, SimNet


@dataclass(frozen=True, slots=True)
class Msg:
    src: str
    dst: str
    n: int = 0


def run(net: SimNet[Msg], steps: int) -> list[tuple[int, Msg]]:
    out = []
    for now in range(steps):
        out.extend((now, m) for m in net.deliver(now))
    return out


def test_delays_stay_within_bounds() -> None:
    net: SimNet[Msg] = SimNet(random.Random(1), NetConfig(min_delay=2, max_delay=5))
    for i in range(200):
        net.send(Msg("a", "b", i), now=0)
    got = run(net, 10)
    assert len(got) == 200
    assert all(2 <= t <= 5 for t, _ in got)


def test_nothing_arrives_in_the_step_it_was_sent() -> None:
    net: SimNet[Msg] = SimNet(random.Random(1))
    net.send(Msg("a", "b"), now=3)
    assert net.deliver(3) == []
    assert len(run(net, 10)) == 1


def test_same_seed_same_behaviour_and_different_seed_differs() -> None:
    def trace(seed: int) -> list[tuple[int, int]]:
        cfg = NetConfig(max_delay=6, drop=0.2, duplicate=0.2, reorder=0.2)
        net: SimNet[Msg] = SimNet(random.Random(seed), cfg)
        for i in range(100):
            net.send(Msg("a", "b", i), now=i // 10)
        return [(t, m.n) for t, m in run(net, 40)]

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_drop_duplicate_and_reorder_happen() -> None:
    cfg = NetConfig(min_delay=1, max_delay=1, drop=0.3, duplicate=0.3, reorder=0.3)
    net: SimNet[Msg] = SimNet(random.Random(3), cfg)
    for i in range(300):
        net.send(Msg("a", "b", i), now=i)
    got = [m.n for _, m in run(net, 400)]
    assert net.stats.dropped > 50 and net.stats.duplicated > 50
    assert len(got) != len(set(got))  # duplicates delivered
    assert len(set(got)) < 300  # some lost
    assert got != sorted(got)  # some reordered despite a fixed link delay


def test_symmetric_partition_and_heal() -> None:
    net: SimNet[Msg] = SimNet(random.Random(0))
    net.partition(["a", "b"], ["c"])
    for src, dst in [("a", "b"), ("a", "c"), ("c", "a"), ("c", "b")]:
        net.send(Msg(src, dst), now=0)
    assert [(m.src, m.dst) for _, m in run(net, 10)] == [("a", "b")]
    net.heal()
    net.send(Msg("c", "a"), now=10)
    assert [(m.src, m.dst) for m in net.deliver(20)] == [("c", "a")]


def test_one_way_cut() -> None:
    net: SimNet[Msg] = SimNet(random.Random(0))
    net.cut_one_way(["a"], ["b", "c"])
    for src, dst in [("a", "b"), ("a", "c"), ("b", "a"), ("c", "a")]:
        net.send(Msg(src, dst), now=0)
    assert sorted((m.src, m.dst) for _, m in run(net, 10)) == [("b", "a"), ("c", "a")]
    assert net.is_blocked("a", "b") and not net.is_blocked("b", "a")


def test_bridge_node_sees_both_halves() -> None:
    net: SimNet[Msg] = SimNet(random.Random(0))
    net.bridge(["a", "b", "m"], ["m", "d", "e"], "m")
    assert net.is_blocked("a", "d") and net.is_blocked("e", "b")
    for other in "abde":
        assert not net.is_blocked("m", other) and not net.is_blocked(other, "m")
    assert not net.is_blocked("a", "b") and not net.is_blocked("d", "e")


def test_message_in_flight_is_lost_when_its_link_is_cut() -> None:
    net: SimNet[Msg] = SimNet(random.Random(0), NetConfig(min_delay=3, max_delay=3))
    net.send(Msg("a", "b"), now=0)
    net.partition(["a"], ["b"])
    assert run(net, 10) == []
    assert net.stats.blocked == 1


def test_discard_to_a_node() -> None:
    net: SimNet[Msg] = SimNet(random.Random(0))
    for dst in "bcb":
        net.send(Msg("a", dst), now=0)
    assert net.discard_to("b") == 2
    assert [m.dst for _, m in run(net, 10)] == ["c"]


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        NetConfig(min_delay=0)
    with pytest.raises(ValueError):
        NetConfig(drop=1.5)


def test_held_messages_wait_for_release_and_may_arrive_twice() -> None:
    net: SimNet[Msg] = SimNet(random.Random(1), NetConfig(min_delay=1, max_delay=1))
    rule = net.hold(lambda m: m.n == 2)
    for i in range(4):
        net.send(Msg("a", "b", i), now=0)
    assert [m.n for _, m in run(net, 5)] == [0, 1, 3]
    assert [m.n for m in net.held] == [2]
    net.unhold(rule)
    net.send(Msg("a", "b", 2), now=5)  # no longer held
    assert [m.n for m in net.deliver(6)] == [2]
    net.release(10, keep=True)
    assert [m.n for m in net.deliver(11)] == [2]
    net.release(20)  # the copy kept back: a duplicate, much later
    assert [m.n for m in net.deliver(21)] == [2]
    assert net.held == []


def test_a_held_message_is_still_lost_to_a_partition_when_released() -> None:
    net: SimNet[Msg] = SimNet(random.Random(1), NetConfig(min_delay=1, max_delay=1))
    net.hold(lambda m: True)
    net.send(Msg("a", "b"), now=0)
    net.partition(["a"], ["b"])
    net.release(1)
    assert net.deliver(5) == []
