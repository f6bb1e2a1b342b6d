"""``Mutation`` records and their JSON form (the watch stream)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from agree import Mutation, Replicated, command
from agree.errors import ProtocolError, RemoteError, ValidationError
from agree.objects.schema import schema_of


@dataclasses.dataclass(frozen=True)
class Move:
    piece: str
    to: tuple[int, int]


class Board(Replicated):
    def __init__(self) -> None:
        self.moves: list[Move] = []

    @command
    def play(self, move: Move, *, at: datetime | None = None) -> frozenset[str]:
        self.moves.append(move)
        return frozenset(m.piece for m in self.moves)


PLAY = schema_of(Board).operation("play")
T = datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)


def _through_json(data: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    return loaded


def test_a_mutation_round_trips_exactly_with_its_operation() -> None:
    m = Mutation(
        object="board",
        method="play",
        args=(Move("knight", (2, 3)),),
        kwargs={"at": T},
        result=frozenset({"knight"}),
        error=None,
        index=10,
        term=2,
        timestamp=T,
    )
    data = _through_json(m.to_json(PLAY))
    assert data["args"] == [{"piece": "knight", "to": [2, 3]}]
    assert data["timestamp"] == "2024-01-02T03:04:05.600000+00:00"
    back = Mutation.from_json(data, PLAY)
    assert back == m
    assert type(back.args[0].to) is tuple


def test_without_an_operation_values_still_round_trip_exactly() -> None:
    # Before, a record without its operation carried a dataclass as a dict and a frozenset
    # as a list.
    m = Mutation("board", "play", (Move("rook", (1, 1)),), {"at": T, "n": {1: (2,)}},
                 frozenset({"rook"}), None, 1, 1, T)
    back = Mutation.from_json(_through_json(m.to_json()))
    assert back == m
    assert type(back.args[0]) is Move and type(back.args[0].to) is tuple
    assert type(back.result) is frozenset and back.kwargs["n"] == {1: (2,)}
    assert (back.index, back.term, back.timestamp) == (1, 1, T)


def test_without_an_operation_a_value_with_no_exact_form_is_refused() -> None:
    m = Mutation("board", "play", (object(),), {}, None, None, 1, 1, T)
    with pytest.raises(ValidationError, match=r"args\[0\]: a value of type object"):
        m.to_json()


def test_an_error_comes_back_with_its_type() -> None:
    m = Mutation("board", "play", (Move("pawn", (0, 9)),), {}, None, ValueError("off board"),
                 3, 1, T)
    data = _through_json(m.to_json(PLAY))
    assert data["error"] == {"type": "builtins:ValueError", "code": None,
                             "message": "off board", "args": ["off board"], "attrs": {}}
    assert data["result"] is None
    back = Mutation.from_json(data, PLAY)
    assert type(back.error) is ValueError and str(back.error) == "off board"
    assert back.result is None


def test_an_unknown_error_type_becomes_a_remote_error() -> None:
    data = _through_json(
        Mutation("b", "play", (), {}, None, ValueError("x"), 1, 1, T).to_json()
    )
    data["error"]["type"] = "gone.module:Vanished"
    back = Mutation.from_json(data)
    assert isinstance(back.error, RemoteError) and back.error.type_name == "gone.module:Vanished"


def test_arguments_are_checked_against_the_operation() -> None:
    data = _through_json(
        Mutation("board", "play", (Move("k", (1, 2)),), {}, frozenset(), None, 1, 1, T).to_json(
            PLAY
        )
    )
    data["args"] = [{"piece": "k"}]
    with pytest.raises(ValidationError, match="argument 'move'"):
        Mutation.from_json(data, PLAY)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d.pop("index"),
        lambda d: d.update(timestamp="yesterday"),
        lambda d: d.update(timestamp="2024-01-02T03:04:05"),
        lambda d: d.update(args={}),
        lambda d: d.update(object=1),
        lambda d: d.update(error={"type": 1}),
    ],
    ids=["no index", "bad timestamp", "naive timestamp", "args not a list", "object not str",
         "bad error"],
)
def test_a_malformed_record_is_a_protocol_error(mangle: Any) -> None:
    data = _through_json(Mutation("b", "m", (1,), {}, 2, None, 1, 1, T).to_json())
    mangle(data)
    with pytest.raises(ProtocolError):
        Mutation.from_json(data)


def test_a_non_object_record_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        Mutation.from_json([])  # type: ignore[arg-type]


def test_a_value_without_json_form_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        Mutation("b", "m", (object(),), {}, None, None, 1, 1, T).to_json()


def test_mutation_is_frozen() -> None:
    m = Mutation("b", "m", (), {}, None, None, 1, 1, T)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.index = 2  # type: ignore[misc]
