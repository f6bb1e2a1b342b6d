"""The error tree's wire form: every error has a stable code and comes back, through JSON text,
as the same class with the same args and attributes."""

from __future__ import annotations

import json

import pytest

import agree.management  # CommandError, which lives there, is part of the tree
from agree.errors import (
    AgreeError,
    ConfigurationError,
    NotLeaderError,
    PermissionDeniedError,
    ProposalLost,
    RemoteError,
    ResultValidationError,
    StorageLockedError,
    SubscriptionOverflowError,
    ValidationError,
    error_class,
)
from agree.wire.codec import ErrorInfo, decode_error, encode_error


def _tree(root: type[AgreeError] = AgreeError) -> list[type[AgreeError]]:
    """agree's own classes under ``root`` (root included), walking the subclasses."""
    found = [root]
    for sub in root.__subclasses__():
        if sub.__module__.startswith("agree."):
            found.extend(_tree(sub))
    return found


# The codes are part of the wire format: once released they never change.
CODES = {
    "AgreeError": "agree",
    "AgreeTimeoutError": "timeout",
    "AuthenticationError": "authentication",
    "ClusterError": "cluster",
    "CommandError": "command",
    "ConfigurationError": "configuration",
    "ContextUnavailableError": "context_unavailable",
    "CorruptionError": "corruption",
    "DeadlockError": "deadlock",
    "IncompatibleVersionError": "incompatible_version",
    "MembershipChangeError": "membership_change",
    "MethodNotFoundError": "method_not_found",
    "MigrationRequiredError": "migration_required",
    "NotLeaderError": "not_leader",
    "OutcomeUnknownError": "outcome_unknown",
    "PermissionDeniedError": "permission_denied",
    "ProposalLost": "proposal_lost",
    "ProposalRejectedError": "proposal_rejected",
    "ProtocolError": "protocol",
    "RemoteError": "remote",
    "ResultValidationError": "result_invalid",
    "SchemaMismatchError": "schema_mismatch",
    "StorageError": "storage",
    "StorageLockedError": "storage_locked",
    "SubscriptionOverflowError": "subscription_overflow",
    "UnavailableError": "unavailable",
    "UnknownMethodError": "unknown_method",
    "UnknownObjectError": "unknown_object",
    "ValidationError": "validation",
}

# Errors that carry attributes, built with them; every other class is built from a message.
SAMPLES: dict[type[AgreeError], AgreeError] = {
    NotLeaderError: NotLeaderError(leader_id="n2", leader_url="http://n2.example:8000"),
    SubscriptionOverflowError: SubscriptionOverflowError("cut off", last_index=7),
    ConfigurationError: ConfigurationError("NODES is empty", setting="NODES"),
    StorageLockedError: StorageLockedError(
        "in use", node_id="n1", pid=4242, host="h1", since="2026-11-29T18:00:00+00:00"
    ),
    PermissionDeniedError: PermissionDeniedError("a read token", required="write"),
    ResultValidationError: ResultValidationError("bad result", index=12, applied=True),
    agree.management.CommandError: agree.management.CommandError("no", returncode=3),
    RemoteError: RemoteError(
        "elsewhere:Gone: it went", type_name="elsewhere:Gone", remote_args=("it went", (1,)),
        remote_attrs={"at": 3},
    ),
}


def _through_json_text(exc: BaseException) -> BaseException:
    text = json.dumps(encode_error(exc).to_json(), allow_nan=False)
    return decode_error(ErrorInfo.from_json(json.loads(text)))


def test_the_tree_is_what_the_codes_table_lists() -> None:
    assert sorted(cls.__name__ for cls in _tree()) == sorted(CODES)


@pytest.mark.parametrize("cls", _tree(), ids=lambda c: c.__name__)
def test_every_error_has_its_own_stable_code(cls: type[AgreeError]) -> None:
    assert cls.__dict__.get("code") == CODES[cls.__name__]
    assert error_class(CODES[cls.__name__]) is cls
    if cls is not RemoteError:  # a RemoteError travels as the type it stands for
        assert encode_error(SAMPLES.get(cls) or cls("x")).code == CODES[cls.__name__]


@pytest.mark.parametrize("cls", _tree(), ids=lambda c: c.__name__)
def test_every_error_round_trips_with_its_attributes(cls: type[AgreeError]) -> None:
    exc = SAMPLES.get(cls) or cls(f"{cls.__name__} happened")
    back = _through_json_text(exc)
    assert type(back) is cls
    assert str(back) == str(exc) and back.args == exc.args
    assert vars(back) == vars(exc)


def test_not_leader_keeps_the_leader_and_overflow_its_index() -> None:
    back = _through_json_text(NotLeaderError(leader_id="n2", leader_url="http://n2:1"))
    assert isinstance(back, NotLeaderError)
    assert (back.leader_id, back.leader_url) == ("n2", "http://n2:1")
    over = _through_json_text(SubscriptionOverflowError("behind", last_index=7))
    assert type(over) is SubscriptionOverflowError and over.last_index == 7


def test_the_code_names_the_class_wherever_it_moved() -> None:
    info = encode_error(NotLeaderError(leader_id="n1"))
    moved = ErrorInfo("agree.somewhere_else:OldName", info.message, info.args, info.attrs,
                      info.code)
    back = decode_error(moved)
    assert type(back) is NotLeaderError and back.leader_id == "n1"


class OverdrawnError(ValidationError):
    """A user's subclass of an agree error: it travels by its own type name."""

    def __init__(self, account: str) -> None:
        super().__init__(f"{account} is overdrawn")
        self.account = account


def test_a_users_subclass_of_an_agree_error_keeps_its_type() -> None:
    info = encode_error(OverdrawnError("alice"))
    assert info.code is None
    back = _through_json_text(OverdrawnError("alice"))
    assert type(back) is OverdrawnError and back.account == "alice"


def test_a_code_cannot_be_taken_twice() -> None:
    with pytest.raises(TypeError, match="already NotLeaderError's"):
        type("Impostor", (AgreeError,), {"code": "not_leader"})


def test_proposal_lost_is_in_the_tree_and_importable_where_it_was() -> None:
    from agree.runtime import driver

    assert driver.ProposalLost is ProposalLost
    assert issubclass(ProposalLost, AgreeError)


def test_a_result_validation_error_is_not_a_validation_error() -> None:
    # Callers treat ValidationError as "nothing was written"; an applied command's bad result
    # must not look like that.
    assert not issubclass(ResultValidationError, ValidationError)
