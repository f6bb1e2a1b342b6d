"""The byte formats: command entries, snapshot state blobs, and recorded errors."""

from __future__ import annotations

import json
import pickle
import platform
import struct
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from agree import Replicated, command
from agree.errors import (
    AgreeError,
    ConfigurationError,
    CorruptionError,
    IncompatibleVersionError,
    NotLeaderError,
    ProtocolError,
    RemoteError,
    StorageError,
    ValidationError,
)
from agree.objects.replicated import CommandContext, applying
from agree.objects.schema import schema_of
from agree.wire.calls import Outcome
from agree.wire.codec import (
    COMMAND_MAGIC,
    STATE_CODEC_VERSION,
    STATE_MAGIC,
    CommandRecord,
    ErrorInfo,
    decode_command,
    decode_error,
    dump_state,
    encode_arguments,
    encode_command,
    encode_error,
    load_state,
    peek_state_header,
)

# -- commands -------------------------------------------------------------------------------------

RECORD = CommandRecord(
    object="counter",
    method="add",
    args=[5, 1.0, True, None, "é", [1, {"k": 2.5}]],
    kwargs={"note": "x", "big": 2**70},
    client_id="c-1",
    seq=7,
    timestamp_ns=1_700_000_000_123_456_789,
    ack=6,
)


def test_a_command_round_trips_with_its_json_types() -> None:
    data = encode_command(RECORD)
    assert data.startswith(COMMAND_MAGIC + b"\x01")
    back = decode_command(data)
    assert back == RECORD
    assert type(back.args[0]) is int and type(back.args[1]) is float
    assert type(back.args[2]) is bool and type(back.kwargs["big"]) is int


def test_ack_defaults_to_zero() -> None:
    rec = CommandRecord("o", "m", [], {}, "c", 1, 2)
    assert rec.ack == 0
    assert decode_command(encode_command(rec)) == rec


def test_command_encoding_is_compact_json() -> None:
    rec = CommandRecord("kv", "set", ["a", "1"], {}, "c", 1, 2)
    assert encode_command(rec) == b'AGC\x01["kv","set",["a","1"],{},"c",1,2,0]'


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ([], {}),
        (["a", "1"], {}),
        ([], {"k": [1, {"é": None}]}),
        ([["x", 1.5], {"ñ\n": "日本"}, True], {"z": {}, "a": []}),
    ],
)
def test_a_command_encoded_from_its_measured_arguments_is_the_same_bytes(
    args: list[Any], kwargs: dict[str, Any]
) -> None:
    rec = CommandRecord("kv", "sét", args, kwargs, "c\u2028", 7, 123456789, 3)
    arguments = encode_arguments(args, kwargs)
    assert arguments is not None
    assert encode_command(rec, arguments) == encode_command(rec)
    assert decode_command(encode_command(rec, arguments)) == rec



def test_a_command_encoded_from_its_arguments_escapes_names_and_client_id_alike() -> None:
    rec = CommandRecord('o"b\\', "m\n", [1], {}, 'c"\\\x00é', 2**70, 0, 5)
    arguments = encode_arguments(rec.args, rec.kwargs)
    assert arguments is not None
    assert encode_command(rec, arguments) == encode_command(rec)
    assert decode_command(encode_command(rec, arguments)) == rec

def test_arguments_that_are_not_json_are_not_encoded() -> None:
    assert encode_arguments([float("nan")], {}) is None
    assert encode_arguments([object()], {}) is None


def test_a_command_from_bound_call_json_round_trips() -> None:
    class Kv(Replicated):
        @command
        def put(self, key: str, at: datetime, data: bytes) -> None: ...

    op = schema_of(Kv).operation("put")
    bound = op.bind(["k", datetime(2024, 1, 1, tzinfo=UTC), b"\xff"], {})
    args, kwargs = bound.to_json()
    rec = decode_command(encode_command(CommandRecord("kv", "put", args, kwargs, "c", 1, 0)))
    assert op.bind_json(rec.args, rec.kwargs) == bound


def test_a_non_json_argument_cannot_be_encoded() -> None:
    for bad in ([object()], [float("nan")]):
        with pytest.raises(ValidationError, match="cannot be encoded"):
            encode_command(CommandRecord("o", "m", bad, {}, "c", 1, 0))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an agree command entry"),
        (b"AG", "not an agree command entry"),
        (b"XYZ\x01[]", r"expected it to start with b'AGC', got b'XYZ\\x01\[\]'"),
        (b"AGS\x01[]", "not an agree command entry"),
        (b"AGC\x01", "not valid JSON"),
        (b"AGC\x01\xff\xfe", "not valid JSON"),
        (b'AGC\x01{"object": "o"}', "must be a JSON array of 8 fields"),
        (b'AGC\x01["o","m",[],{},"c",1]', "must be a JSON array of 8 fields"),
        (b'AGC\x01["o","m",{},{},"c",1,2,0]', "field 'args' must be list"),
        (b'AGC\x01["o",1,[],{},"c",1,2,0]', "field 'method' must be str"),
        (b'AGC\x01["o","m",[],{},"c",true,2,0]', "field 'seq' must be int"),
        (b'AGC\x01["o","m",[],{},"c",1,2.5,0]', "field 'timestamp_ns' must be int"),
        (b'AGC\x01["o","m",[],{},"c",-1,2,0]', "negative"),
        (b'AGC\x01["o","m",[NaN],{},"c",1,2,0]', "not valid JSON"),
        (b'AGC\x01["o","m",[],{},"c",1,2,0] x', "not valid JSON"),
        (b'AGC\x01["o","m",[],{},"c",1,2,0]]', "not valid JSON"),
        (b'AGC\x01 x["o","m",[],{},"c",1,2,0]', "not valid JSON"),
    ],
    ids=repr,
)
def test_garbage_is_a_corruption_error(data: bytes, message: str) -> None:
    with pytest.raises(CorruptionError, match=message):
        decode_command(data)


def test_decode_accepts_json_with_whitespace_as_json_does() -> None:
    body = b'\n ["o", "m", [1], {"k": 2}, "c", 1, 2, 0] \t'
    assert decode_command(COMMAND_MAGIC + b"\x01" + body) == CommandRecord(
        "o", "m", [1], {"k": 2}, "c", 1, 2, 0
    )


def test_a_non_bytes_entry_is_a_corruption_error() -> None:
    with pytest.raises(CorruptionError, match="must be bytes"):
        decode_command("AGC\x01[]")  # type: ignore[arg-type]


def test_a_newer_command_codec_is_refused_naming_both_versions() -> None:
    data = COMMAND_MAGIC + b"\x02" + encode_command(RECORD)[4:]
    with pytest.raises(
        IncompatibleVersionError, match=r"codec version 2 \(a newer agree\).*codec version 1"
    ):
        decode_command(data)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = encode_command(RECORD)
    assert decode_command(bytearray(data)) == RECORD  # type: ignore[arg-type]
    assert decode_command(memoryview(data)) == RECORD  # type: ignore[arg-type]


# -- state blobs ----------------------------------------------------------------------------------


class Ledger(Replicated):
    def __init__(self) -> None:
        self.entries: list[tuple[int, str]] = []
        self.total = 0

    @command
    def post(self, amount: int, memo: str) -> int:
        self.entries.append((self.context.index, memo))
        self.total += amount
        return self.total


class WithState:
    """Keeps a derived cache that must not be snapshotted."""

    def __init__(self) -> None:
        self.items = [1, 2, 3]
        self.cache: dict[int, int] | None = {1: 1}
        self.restored = False

    def __getstate__(self) -> dict[str, Any]:
        return {"items": self.items}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.items = state["items"]
        self.cache = None
        self.restored = True


def test_state_round_trips() -> None:
    ledger = Ledger()
    with applying(CommandContext(3, 1, datetime(2024, 1, 1, tzinfo=UTC))):
        ledger.post(5, "coffee")
    back = load_state(dump_state({"ledger": ledger, "n": 1}))
    assert isinstance(back, dict)
    restored = back["ledger"]
    assert isinstance(restored, Ledger)
    assert restored.entries == [(3, "coffee")] and restored.total == 5


def test_the_command_context_is_never_pickled() -> None:
    ledger = Ledger()
    ctx = CommandContext(9, 2, datetime(2024, 1, 1, tzinfo=UTC))
    with applying(ctx):
        blob = dump_state(ledger)
    assert b"CommandContext" not in blob
    restored = load_state(blob)
    assert isinstance(restored, Ledger)
    assert "context" not in vars(restored)


def test_getstate_and_setstate_are_honoured() -> None:
    obj = WithState()
    restored = load_state(dump_state(obj))
    assert isinstance(restored, WithState)
    assert restored.items == [1, 2, 3]
    assert restored.cache is None and restored.restored


def test_classes_defined_in_a_function_travel_by_value() -> None:
    class Local:
        def __init__(self) -> None:
            self.x = 41

        def bump(self) -> int:
            return self.x + 1

    restored = load_state(dump_state(Local()))
    assert restored.bump() == 42  # type: ignore[attr-defined]


WRITER = """
import sys
from dataclasses import dataclass
from agree.wire.codec import dump_state

@dataclass
class Point:
    x: int
    y: int

    def where(self) -> str:
        return f"old {self.x},{self.y}"

def helper() -> str:
    return "old helper"

with open(sys.argv[1], "wb") as f:
    f.write(dump_state({"points": [Point(1, 2)], "helper": helper, "plus": lambda n: n + 1}))
"""

READER = """
import sys
from dataclasses import dataclass
from agree.wire.codec import load_state

@dataclass
class Point:
    x: int
    y: int
    z: int = 0  # a field added since

    def where(self) -> str:
        return f"new {self.x},{self.y},{self.z}"

def helper() -> str:
    return "new helper"

with open(sys.argv[1], "rb") as f:
    state = load_state(f.read())
print(state["points"][0].where(), state["helper"](), state["plus"](41), sep="|")
"""


def test_a_main_class_is_stored_by_name_and_the_readers_code_runs(tmp_path: Path) -> None:
    # A script's classes and functions live in __main__: stored by name, a restarted script
    # runs its own (new) definitions on the stored values.  A lambda has no name: by value.
    blob = tmp_path / "state.blob"
    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "reader.py").write_text(READER)
    subprocess.run([sys.executable, "writer.py", str(blob)], check=True, cwd=tmp_path)
    out = subprocess.run(
        [sys.executable, "reader.py", str(blob)],
        check=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == "new 1,2,0|new helper|42"


def test_a_name_this_code_does_not_define_is_refused_by_name(tmp_path: Path) -> None:
    blob = tmp_path / "state.blob"
    (tmp_path / "writer.py").write_text(WRITER)
    subprocess.run([sys.executable, "writer.py", str(blob)], check=True, cwd=tmp_path)
    with pytest.raises(StorageError) as info:
        load_state(blob.read_bytes())  # this process's __main__ defines no Point
    assert "__main__.Point" in str(info.value) and "does not define" in str(info.value)


class Tally(Replicated):
    """Version 1 of a hosted class."""

    def __init__(self) -> None:
        self.count = 0
        self.names: set[str] = set()

    @command
    def add(self, name: str) -> int:
        self.names.add(name)
        self.count += 1
        return self.count


class RenamedTally(Replicated):
    """Version 2: renamed, a new attribute, and an upgrade hook for older state."""

    def __init__(self) -> None:
        raise AssertionError("a restore never calls __init__")

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("unit", "names")
        self.__dict__.update(state)

    @command
    def add(self, name: str) -> int:
        self.names.add(name)
        self.count += 10
        return self.count


def test_a_hosted_object_is_stored_without_its_class_and_rebuilt_as_the_given_one() -> None:
    tally = Tally()
    tally.add("a")
    blob = dump_state({"objects": {"t": tally}}, hosted={"t": tally})
    header = peek_state_header(blob)
    assert header.hosted == {"t": f"{__name__}.Tally"}
    assert b"Tally" not in blob[header.payload_offset :]
    state: Any = load_state(blob, hosted={"t": RenamedTally})
    restored = state["objects"]["t"]
    assert type(restored) is RenamedTally
    assert (restored.count, restored.names, restored.unit) == (1, {"a"}, "names")
    assert restored.add("b") == 11


def test_a_hosted_object_with_slots_or_new_args_is_rebuilt_as_the_given_class() -> None:
    class Slotted(Replicated):
        __slots__ = ("value",)

        def __init__(self) -> None:
            self.value = 7

    made: list[tuple[type, tuple[Any, ...], dict[str, Any]]] = []

    class NewArgs(Replicated):
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            made.append((cls, args, kwargs))
            return super().__new__(cls)

        def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
            return (1,), {"k": 2}

    class Slotted2(Slotted):
        __slots__ = ()

    class NewArgs2(NewArgs):
        pass

    a, b = Slotted(), NewArgs()
    state: Any = load_state(
        dump_state([a, b], hosted={"a": a, "b": b}), hosted={"a": Slotted2, "b": NewArgs2}
    )
    assert type(state[0]) is Slotted2 and state[0].value == 7
    assert type(state[1]) is NewArgs2 and made[-1] == (NewArgs2, (1,), {"k": 2})


def test_a_hosted_object_without_a_class_to_rebuild_it_is_refused() -> None:
    tally = Tally()
    blob = dump_state([tally], hosted={"t": tally})
    with pytest.raises(StorageError, match="'t'"):
        load_state(blob)


def test_a_state_blob_is_stable_across_calls() -> None:
    class Local:
        def __init__(self) -> None:
            self.tags = {"x", "y", "z", 3, (1, 2)}
            self.key = lambda v: -v

    tally = Tally()
    for name in "qwertyuiop":
        tally.add(name)
    value = {"t": tally, "local": Local(), "f": frozenset({"a", "b"})}
    assert dump_state(value, hosted={"t": tally}) == dump_state(value, hosted={"t": tally})


def test_the_header_carries_the_writers_versions() -> None:
    blob = dump_state([1, 2, 3])
    assert blob.startswith(STATE_MAGIC + bytes((STATE_CODEC_VERSION,)))
    header = peek_state_header(blob)
    assert header.codec_version == STATE_CODEC_VERSION == 2
    assert header.hosted == {}
    assert header.python_version == platform.python_version()
    assert header.cloudpickle_version == cloudpickle.__version__
    assert header.payload_length == len(blob) - header.payload_offset


def _reheader(blob: bytes, **changes: Any) -> bytes:
    header = peek_state_header(blob)
    fields = json.loads(blob[8 : header.payload_offset])
    fields.update(changes)
    encoded = json.dumps(fields).encode()
    return blob[:4] + struct.pack(">I", len(encoded)) + encoded + blob[header.payload_offset :]


def _other_minor() -> str:
    major, minor, _ = platform.python_version_tuple()
    return f"{major}.{int(minor) + 1}.0"


def test_a_blob_from_another_python_minor_is_refused_naming_both() -> None:
    blob = _reheader(dump_state({"a": 1}), python=_other_minor())
    with pytest.raises(IncompatibleVersionError) as info:
        load_state(blob)
    assert f"Python {_other_minor()}" in str(info.value)
    assert f"Python {platform.python_version()}" in str(info.value)


def test_a_blob_from_another_python_micro_is_accepted() -> None:
    major, minor, _ = platform.python_version_tuple()
    blob = _reheader(dump_state({"a": 1}), python=f"{major}.{minor}.999")
    assert load_state(blob) == {"a": 1}


def test_a_blob_from_another_cloudpickle_major_is_refused_naming_both() -> None:
    other = f"{int(cloudpickle.__version__.split('.')[0]) + 1}.0.0"
    blob = _reheader(dump_state({"a": 1}), cloudpickle=other)
    with pytest.raises(IncompatibleVersionError) as info:
        load_state(blob)
    assert f"cloudpickle {other}" in str(info.value)
    assert f"cloudpickle {cloudpickle.__version__}" in str(info.value)


def test_a_blob_from_a_newer_state_codec_is_refused_naming_both() -> None:
    blob = dump_state({"a": 1})
    newer = blob[:3] + b"\x07" + blob[4:]
    for reader in (load_state, peek_state_header):
        with pytest.raises(IncompatibleVersionError, match=r"codec version 7.*codec version 2"):
            reader(newer)


def test_a_blob_from_the_codec_that_pickled_classes_by_value_is_refused() -> None:
    older = dump_state({"a": 1})
    older = older[:3] + b"\x01" + older[4:]
    with pytest.raises(IncompatibleVersionError, match=r"version 1 \(an older agree\)"):
        load_state(older)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"",
        lambda b: b"PK\x03\x04" + b[4:],
        lambda b: b[:6],
        lambda b: b[:4] + struct.pack(">I", 10**6) + b[8:],
        lambda b: b[:8] + b"{not json" + b[17:],
    ],
    ids=["empty", "bad magic", "truncated header", "header too long", "header not json"],
)
def test_a_bad_header_is_a_corruption_error(mangle: Any) -> None:
    blob = mangle(dump_state({"a": 1}))
    with pytest.raises(CorruptionError):
        peek_state_header(blob)
    with pytest.raises(CorruptionError):
        load_state(blob)


def test_a_header_missing_a_field_is_a_corruption_error() -> None:
    blob = dump_state({"a": 1})
    header = peek_state_header(blob)
    fields = json.loads(blob[8 : header.payload_offset])
    del fields["crc32"]
    encoded = json.dumps(fields).encode()
    broken = blob[:4] + struct.pack(">I", len(encoded)) + encoded + blob[header.payload_offset :]
    with pytest.raises(CorruptionError, match="lacks a field"):
        load_state(broken)


def test_a_damaged_payload_fails_its_checksum_before_unpickling() -> None:
    blob = bytearray(dump_state({"key": "value" * 10}))
    blob[-5] ^= 0x55
    with pytest.raises(CorruptionError, match="CRC-32"):
        load_state(bytes(blob))
    with pytest.raises(CorruptionError, match="payload is"):
        load_state(dump_state({"a": 1})[:-1])


def test_an_unpicklable_object_is_a_storage_error() -> None:
    import threading

    with pytest.raises(StorageError, match="cannot snapshot"):
        dump_state({"lock": threading.Lock()})


# -- errors ---------------------------------------------------------------------------------------


class InsufficientFunds(Exception):
    pass


class NeedsTwo(Exception):
    def __init__(self, amount: int, balance: int) -> None:
        super().__init__(f"cannot take {amount} from {balance}")


def _round_trip(exc: BaseException) -> BaseException:
    info = encode_error(exc)
    wire = json.loads(json.dumps(info.to_json()))
    return decode_error(ErrorInfo.from_json(wire))


def test_a_builtin_error_comes_back_with_its_type_and_message() -> None:
    back = _round_trip(ValueError("n must be >= 0"))
    assert type(back) is ValueError and str(back) == "n must be >= 0"
    assert back.args == ("n must be >= 0",)
    key = _round_trip(KeyError("missing"))
    assert type(key) is KeyError and key.args == ("missing",)
    empty = _round_trip(RuntimeError())
    assert type(empty) is RuntimeError and empty.args == ()


def test_encode_error_records_type_message_and_args() -> None:
    info = encode_error(ValueError("bad", 3, [1.5, None]))
    assert info == ErrorInfo(
        "builtins:ValueError", "('bad', 3, [1.5, None])", ["bad", 3, [1.5, None]]
    )
    assert type(_round_trip(ValueError("bad", 3, [1.5, None]))) is ValueError


def test_a_user_error_keeps_its_type() -> None:
    back = _round_trip(InsufficientFunds("balance 3 < 5"))
    assert type(back) is InsufficientFunds and str(back) == "balance 3 < 5"
    assert encode_error(InsufficientFunds("x")).type.endswith(":InsufficientFunds")


def test_agree_errors_keep_their_type() -> None:
    for exc in (ValidationError("bad call"), ConfigurationError("bad", setting="NODES"),
                NotLeaderError("not me")):
        back = _round_trip(exc)
        assert type(back) is type(exc) and str(back) == str(exc)


def test_args_that_are_not_json_keep_their_types() -> None:
    # Before, such args were dropped and the error rebuilt from its message alone.
    exc = ValueError((1, 2), datetime(2020, 1, 1, tzinfo=UTC), {1: b"x"})
    back = _round_trip(exc)
    assert type(back) is ValueError and back.args == exc.args and str(back) == str(exc)
    assert type(back.args[0]) is tuple and type(back.args[2]) is dict


class InsufficientFunds2(Exception):
    """Takes other parameters than its args, and keeps attributes."""

    def __init__(self, needed: int, have: int) -> None:
        super().__init__(f"need {needed}, have {have}")
        self.needed = needed
        self.have = have


def test_an_error_whose_init_is_not_message_comes_back_with_its_attributes() -> None:
    # Before: ``type(*args)`` failed for such a class and it came back as a RemoteError.
    back = _round_trip(NeedsTwo(5, 3))
    assert type(back) is NeedsTwo and str(back) == "cannot take 5 from 3"
    exc = InsufficientFunds2(10, 3)
    exc.account = ("alice", 7)  # type: ignore[attr-defined]
    exc.add_note("while paying")
    back = _round_trip(exc)
    assert type(back) is InsufficientFunds2
    assert back.args == ("need 10, have 3",) and str(back) == "need 10, have 3"
    assert vars(back) == vars(exc) and back.account == ("alice", 7)  # type: ignore[attr-defined]
    assert back.__notes__ == ["while paying"]


class Noisy(Exception):
    inits = 0

    def __init__(self, message: str) -> None:
        Noisy.inits += 1
        super().__init__(message)


def test_decoding_an_error_runs_no_init() -> None:
    info = encode_error(Noisy("x"))
    before = Noisy.inits
    back = decode_error(info)
    assert type(back) is Noisy and Noisy.inits == before


def test_an_unresolvable_error_keeps_its_type_name_message_args_and_attributes() -> None:
    info = ErrorInfo("gone.module:Vanished", "it went", [1, {"$t": "tuple", "v": [2]}],
                     {"amount": 5})
    back = decode_error(ErrorInfo.from_json(json.loads(json.dumps(info.to_json()))))
    assert isinstance(back, RemoteError)
    assert back.type_name == "gone.module:Vanished" and str(back) == "gone.module:Vanished: it went"
    assert back.remote_args == (1, (2,)) and back.remote_attrs == {"amount": 5}
    # Passed on again, it still stands for the original.
    assert encode_error(back) == info


def test_an_error_with_an_argument_that_has_no_exact_form_is_a_remote_error() -> None:
    exc = ValueError(object())
    back = _round_trip(exc)
    assert isinstance(back, RemoteError) and back.type_name == "builtins:ValueError"
    assert back.remote_args is None and str(exc) in str(back)
    exc2 = InsufficientFunds2(1, 0)
    exc2.handle = object()  # type: ignore[attr-defined]
    back2 = _round_trip(exc2)
    assert isinstance(back2, RemoteError) and back2.remote_attrs == {"needed": 1, "have": 0}


@pytest.mark.parametrize(
    "type_name",
    [
        "no.such.module:Error",
        "builtins:NoSuchError",
        "builtins:len",
        "builtins:KeyboardInterrupt",
        "builtins:SystemExit",
        "tests:<locals>.Err",
        "not a type name",
        "os:path",
    ],
)
def test_unresolvable_or_unsafe_types_become_remote_errors(type_name: str) -> None:
    back = decode_error(ErrorInfo(type_name, "boom", ["boom"]))
    assert isinstance(back, RemoteError)
    assert back.type_name == type_name
    assert str(back) == f"{type_name}: boom"


def test_a_module_that_is_not_loaded_is_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "agree_test_side_effects.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Boom(Exception):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    back = decode_error(ErrorInfo("agree_test_side_effects:Boom", "x", ["x"]))
    assert isinstance(back, RemoteError)
    assert not marker.exists()


def test_a_local_exception_class_becomes_a_remote_error() -> None:
    class Local(Exception):
        pass

    back = _round_trip(Local("x"))
    assert isinstance(back, RemoteError) and "<locals>" in back.type_name


def test_a_remote_error_passes_on_the_type_it_stands_for() -> None:
    remote = decode_error(ErrorInfo("elsewhere:Gone", "it went", None))
    assert isinstance(remote, RemoteError)
    assert encode_error(remote) == ErrorInfo("elsewhere:Gone", "it went", None)


def test_keyboard_interrupt_is_recorded_but_not_rebuilt() -> None:
    info = encode_error(KeyboardInterrupt())
    assert info.type == "builtins:KeyboardInterrupt"
    assert isinstance(decode_error(info), RemoteError)


def test_an_unprintable_exception_is_still_encoded() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    info = encode_error(Unprintable())
    assert "unprintable" in info.message


@pytest.mark.parametrize(
    "wire",
    [
        [],
        {"type": 1, "message": "m"},
        {"type": "builtins:ValueError"},
        {"type": "builtins:ValueError", "message": "m", "args": "x"},
        {"type": "builtins:ValueError", "message": "m", "args": [float("nan")]},
        {"type": "builtins:ValueError", "message": "m", "attrs": []},
        {"type": "builtins:ValueError", "message": "m", "attrs": {"a": float("inf")}},
        {"type": "builtins:ValueError", "message": "m", "code": 3},
    ],
    ids=repr,
)
def test_a_malformed_error_record_is_a_protocol_error(wire: Any) -> None:
    with pytest.raises(ProtocolError):
        ErrorInfo.from_json(wire)


def test_error_info_json_round_trip() -> None:
    info = ErrorInfo("builtins:ValueError", "bad", ["bad"])
    assert ErrorInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    assert issubclass(RemoteError, AgreeError)


def test_a_session_outcome_pickles_as_it_did_when_outcomes_were_frozen() -> None:
    """Snapshots hold the session table's outcomes: one written by an agree whose Outcome was a
    frozen dataclass loads, and one written now is the same bytes."""
    written_frozen = (
        b"\x80\x05\x955\x00\x00\x00\x00\x00\x00\x00\x8c\x10agree.wire.calls\x94\x8c\x07Outcome"
        b"\x94\x93\x94)\x81\x94]\x94(]\x94(K\x01\x8c\x01x\x94eNK\x07eb."
    )
    outcome = Outcome(result=[1, "x"], index=7)
    assert pickle.loads(written_frozen) == outcome
    assert pickle.dumps(outcome, protocol=5) == written_frozen
    error = Outcome(error=encode_error(ValueError("boom")), index=3)
    assert pickle.loads(pickle.dumps(error)) == error
