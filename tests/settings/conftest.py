"""Fixtures for the settings tests: a clean environment and throwaway modules."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator

import pytest

from agree.conf.settings import SETTINGS_MODULE_ENV

MakeModule = Callable[..., types.ModuleType]


@pytest.fixture(autouse=True)
def _no_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own AGREE_SETTINGS_MODULE must not leak into these tests.
    monkeypatch.delenv(SETTINGS_MODULE_ENV, raising=False)


@pytest.fixture
def make_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeModule]:
    """Register an in-memory module under a dotted name for the duration of a test."""

    def make(name: str, **attributes: object) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
        return module

    yield make
