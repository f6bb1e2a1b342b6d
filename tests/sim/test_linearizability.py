"""The linearizability checker: known histories, tricky indeterminate cases, and a
brute-force cross-check on small random histories."""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable, Sequence
from typing import Any

import pytest

from agree.testing.linearizability import (
    LINEARIZABLE,
    NOT_LINEARIZABLE,
    UNKNOWN,
    Cas,
    Operation,
    Read,
    RegisterModel,
    Write,
    check,
    check_key,
)

Op = Operation[Any, Any]
MODEL = RegisterModel()


def w(value: Hashable, t0: float, t1: float | None, *, key: str = "k", c: str = "c") -> Op:
    return Operation(c, key, Write(value), None, t0, t1)


def r(value: Hashable, t0: float, t1: float | None, *, key: str = "k", c: str = "c") -> Op:
    return Operation(c, key, Read(), value, t0, t1)


def cas(exp: Hashable, new: Hashable, ok: bool | None, t0: float, t1: float | None) -> Op:
    return Operation("c", "k", Cas(exp, new), ok, t0, t1)


def verdict(*ops: Op) -> str:
    return check(MODEL, ops).verdict


def test_empty_history_is_linearizable() -> None:
    assert verdict() == LINEARIZABLE


def test_sequential_read_your_write() -> None:
    assert verdict(w(1, 0, 1), r(1, 2, 3)) == LINEARIZABLE
    assert verdict(w(1, 0, 1), r(None, 2, 3)) == NOT_LINEARIZABLE


def test_initial_value_is_none() -> None:
    assert verdict(r(None, 0, 1)) == LINEARIZABLE
    assert verdict(r(5, 0, 1)) == NOT_LINEARIZABLE


def test_concurrent_read_may_see_either_value() -> None:
    assert verdict(w(1, 0, 10), r(None, 1, 2)) == LINEARIZABLE
    assert verdict(w(1, 0, 10), r(1, 1, 2)) == LINEARIZABLE


def test_new_old_inversion_is_caught() -> None:
    # Two reads during one write: once a read saw the new value, a later read may not
    # see the old one (the classic non-atomic register behaviour).
    assert verdict(w(1, 0, 10), r(1, 1, 2), r(None, 3, 4)) == NOT_LINEARIZABLE
    assert verdict(w(1, 0, 10), r(None, 1, 2), r(1, 3, 4)) == LINEARIZABLE


def test_stale_read_after_overwrite() -> None:
    assert verdict(w(1, 0, 1), w(2, 2, 3), r(1, 4, 5)) == NOT_LINEARIZABLE


def test_equal_times_are_concurrent() -> None:
    # The read starts exactly when the write returns: may go either way.
    assert verdict(w(1, 0, 5), r(None, 5, 6)) == LINEARIZABLE


def test_indeterminate_write_may_never_happen() -> None:
    assert verdict(w(1, 0, None), r(None, 5, 6)) == LINEARIZABLE


def test_indeterminate_write_may_happen_much_later() -> None:
    # Seen long after its client gave up, and after an older value was read again.
    assert verdict(w(1, 0, None), r(None, 50, 51), r(1, 100, 101)) == LINEARIZABLE


def test_indeterminate_write_takes_effect_at_most_once() -> None:
    # 1 seen, then 2 overwrote it, then 1 again: the single write of 1 cannot explain that.
    h = (w(1, 0, None), r(1, 2, 3), w(2, 4, 5), r(2, 6, 7), r(1, 8, 9))
    assert verdict(*h) == NOT_LINEARIZABLE


def test_indeterminate_write_cannot_take_effect_before_invoke() -> None:
    assert verdict(r(1, 0, 1), w(1, 2, None)) == NOT_LINEARIZABLE


def test_two_indeterminate_writes_in_either_order() -> None:
    h = (w(1, 0, None), w(2, 0, None), r(2, 5, 6), r(1, 7, 8))
    assert verdict(*h) == LINEARIZABLE
    assert verdict(*h, r(2, 9, 10)) == NOT_LINEARIZABLE


def test_indeterminate_read_is_ignored() -> None:
    assert verdict(w(1, 0, 1), r(7, 2, None)) == LINEARIZABLE


def test_compare_and_set() -> None:
    assert verdict(w(1, 0, 1), cas(1, 2, True, 2, 3), r(2, 4, 5)) == LINEARIZABLE
    assert verdict(w(1, 0, 1), cas(1, 2, False, 2, 3)) == NOT_LINEARIZABLE
    assert verdict(w(1, 0, 1), cas(3, 2, True, 2, 3)) == NOT_LINEARIZABLE
    # Two concurrent CAS from the same value: only one may win.
    assert verdict(w(1, 0, 1), cas(1, 2, True, 2, 5), cas(1, 3, True, 2, 5)) == NOT_LINEARIZABLE
    assert verdict(w(1, 0, 1), cas(1, 2, True, 2, 5), cas(1, 3, False, 2, 5)) == LINEARIZABLE


def test_indeterminate_cas_applies_only_if_it_matches() -> None:
    assert verdict(w(1, 0, 1), cas(1, 2, None, 2, None), r(2, 5, 6)) == LINEARIZABLE
    assert verdict(w(1, 0, 1), cas(9, 2, None, 2, None), r(2, 5, 6)) == NOT_LINEARIZABLE


def test_keys_are_independent() -> None:
    h = (w(1, 0, 1, key="a"), r(None, 2, 3, key="b"), r(1, 2, 3, key="a"))
    assert verdict(*h) == LINEARIZABLE
    res = check(MODEL, (*h, r(None, 4, 5, key="a")))
    assert res.verdict == NOT_LINEARIZABLE
    assert {k.key: k.verdict for k in res.keys} == {"a": NOT_LINEARIZABLE, "b": LINEARIZABLE}


def test_explanation_names_key_and_minimal_prefix() -> None:
    h = [w(1, 0, 1, c="A"), r(1, 2, 3, c="B"), r(None, 4, 5, c="C")]
    # Operations after the violation are not part of the minimal prefix.
    h += [w(2, 10 + i, 11 + i, c="D") for i in range(0, 20, 2)]
    res = check(MODEL, h)
    assert not res.ok
    (bad,) = [k for k in res.keys if k.verdict == NOT_LINEARIZABLE]
    assert bad.culprit == h[2]
    assert set(bad.prefix) == set(h[:3])
    assert "key 'k'" in res.explanation
    assert "client C: read -> None" in res.explanation
    assert "write 2" not in res.explanation


def test_budget_gives_unknown() -> None:
    # (The indeterminate CAS keeps the register model from pruning the unread writes.)
    ops = [w(i, 0, None) for i in range(12)] + [cas(50, 51, None, 0, None), r(99, 1, 2)]
    assert check_key(MODEL, ops, budget=50).verdict == UNKNOWN


def test_rejects_operation_completing_before_invoke() -> None:
    with pytest.raises(ValueError):
        check(MODEL, [w(1, 5, 4)])


def test_long_concurrent_history_is_fast_enough_to_check() -> None:
    # 3 clients, 600 operations with overlapping intervals and some indeterminate writes;
    # memoization keeps this to a bounded number of states.
    rng = random.Random(7)
    ops, value, t = [], None, 0.0
    for n in range(600):
        t += 1.0
        if rng.random() < 0.5:
            value = n
            done = None if rng.random() < 0.05 else t + 0.5
            ops.append(w(n, t - 0.5, done, c=str(n % 3)))
        else:
            ops.append(r(value, t - 0.2, t + 0.2, c=str(n % 3)))
    res = check_key(MODEL, ops)
    assert res.verdict == LINEARIZABLE
    assert res.states < 50_000


# --- brute force ---------------------------------------------------------------------


def brute_force(ops: Sequence[Op]) -> bool:
    """Try every subset of indeterminate ops and every order respecting real time."""
    det = [op for op in ops if op.complete is not None]
    ind = [op for op in ops if op.complete is None]
    for k in range(len(ind) + 1):
        for chosen in itertools.combinations(ind, k):
            for order in itertools.permutations(det + list(chosen)):
                if _respects_real_time(order) and _legal(order):
                    return True
    return False


def _respects_real_time(order: Sequence[Op]) -> bool:
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if b.complete is not None and b.complete < a.invoke:
                return False
    return True


def _legal(order: Sequence[Op]) -> bool:
    state = MODEL.init()
    for op in order:
        if op.complete is None:
            state = MODEL.step_unknown(state, op.input)
        else:
            ok, state = MODEL.step(state, op.input, op.output)
            if not ok:
                return False
    return True


def random_history(rng: random.Random, n: int, kinds: str = "rwc") -> list[Op]:
    """A history produced by a real register (so often linearizable), then perturbed."""
    points = sorted(rng.uniform(0, 10) for _ in range(n))
    state: Hashable = None
    ops: list[Op] = []
    for i, p in enumerate(points):
        kind = rng.choice(kinds)
        top = 2 if "c" in kinds else 5  # read/write only: more values, so some go unread
        inp: Any
        if kind == "r":
            inp, out = Read(), state
        elif kind == "w":
            inp, out = Write(rng.randint(0, top)), None
            state = inp.value
        else:
            inp = Cas(rng.randint(0, 2), rng.randint(0, 2))
            out = state == inp.expected
            if out:
                state = inp.new
        if rng.random() < 0.25:  # a wrong answer
            out = rng.choice([None, 0, 1, 2]) if kind == "r" else (not out if kind == "c" else out)
        t0 = p - rng.uniform(0, 3)
        t1 = None if rng.random() < 0.2 else round(p + rng.uniform(0, 3), 1)
        ops.append(Operation(f"c{i}", "k", inp, out, round(t0, 1), t1))
    return ops


@pytest.mark.parametrize("kinds", ["rwc", "rw"])
def test_brute_force_cross_check(kinds: str) -> None:
    # "rw" histories exercise the register model's pruning of unread indeterminate writes.
    rng = random.Random(2024)
    outcomes = {True: 0, False: 0}
    for _ in range(600):
        ops = random_history(rng, rng.randint(1, 7), kinds)
        expected = brute_force(ops)
        outcomes[expected] += 1
        got = check(MODEL, ops).verdict
        assert got == (LINEARIZABLE if expected else NOT_LINEARIZABLE), ops
    # The generator must exercise both verdicts substantially.
    assert outcomes[True] > 100 and outcomes[False] > 100, outcomes


def test_many_unread_indeterminate_writes_stay_cheap() -> None:
    # A failed check must not explore every subset of writes nobody ever read.
    ops = [w(i, float(i), None) for i in range(40)]
    ops += [w("x", 50, 51), r("x", 52, 53), r("stale", 60, 61)]
    res = check_key(MODEL, ops)
    assert res.verdict == NOT_LINEARIZABLE
    assert res.states < 100
