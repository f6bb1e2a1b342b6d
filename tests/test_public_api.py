"""The public surface is explicit: a sorted ``__all__`` whose names all resolve."""

from __future__ import annotations

import agree
import agree.batteries
import agree.raft


def test_all_is_sorted_and_resolves() -> None:
    for module in (agree, agree.raft, agree.batteries):
        assert list(module.__all__) == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name


def test_every_error_is_an_agree_error() -> None:
    for name in agree.__all__:
        obj = getattr(agree, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, agree.AgreeError), name
