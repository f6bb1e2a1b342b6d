"""Client-side pieces without a server: the error codec of the HTTP API, schemas rebuilt from
their published JSON, and the thread runner of synchronous handles."""

from __future__ import annotations

import asyncio
import threading

import pytest

import agree
from agree.client._schema import schema_from_json
from agree.objects.schema import schema_of
from agree.runtime.proxy import ThreadLoop
from agree.testing.models import Counter
from agree.wire import api_errors
from agree.wire.codec import encode_error


class Custom(Exception):
    pass


@pytest.mark.parametrize(
    "error",
    [
        agree.NotLeaderError(leader_id="n2", leader_url="http://127.0.0.1:8002"),
        agree.NotLeaderError(),
        agree.UnavailableError("no quorum"),
        agree.OutcomeUnknownError("maybe"),
        agree.AgreeTimeoutError("late"),
        agree.ValidationError("bad argument"),
        agree.UnknownMethodError("no such method"),
        agree.ConfigurationError("bad setting", setting="NODES"),
        agree.SubscriptionOverflowError("too far behind", last_index=41),
        agree.PermissionDeniedError("no", required="admin"),
        agree.MembershipChangeError("busy"),
    ],
)
def test_framework_errors_round_trip_with_type_and_attributes(error: agree.AgreeError) -> None:
    body = api_errors.encode(error)
    status = api_errors.http_status(error)
    back = api_errors.decode(body, status)
    assert type(back) is type(error)
    assert str(back) == str(error) and back.args == error.args
    assert vars(back) == vars(error)
    assert body["error"]["type"] == type(error).code  # the stable wire code
    # The plain attributes are there for a person reading the JSON.
    for name, value in vars(error).items():
        assert body["error"][name] == value


def test_statuses_say_whose_fault() -> None:
    assert api_errors.http_status(agree.UnknownObjectError("x")) == 404
    assert api_errors.http_status(agree.ValidationError("x")) == 400
    assert api_errors.http_status(agree.AuthenticationError("x")) == 401
    assert api_errors.http_status(agree.PermissionDeniedError("x", required="admin")) == 403
    assert api_errors.http_status(agree.NotLeaderError()) == 503
    assert api_errors.http_status(agree.OutcomeUnknownError("x")) == 504
    assert api_errors.http_status(RuntimeError("bug")) == 500
    # A bug's details stay in the server's log.
    assert api_errors.encode(RuntimeError("secret detail"))["error"]["message"] == (
        "internal server error"
    )


def test_application_errors_keep_the_users_type() -> None:
    body = api_errors.encode_application(encode_error(Custom("boom")), index=7)
    assert body["error"]["type"] == "application"
    back = api_errors.decode(body, 422)
    assert type(back) is Custom and str(back) == "boom"
    body = api_errors.encode_application(encode_error(ValueError("n must be >= 0")))
    assert type(api_errors.decode(body, 422)) is ValueError
    # A framework error as a call's outcome (the call ran): its class and fields come back.
    bad = agree.ResultValidationError("bad result", index=9, applied=True)
    back = api_errors.decode(api_errors.encode_application(encode_error(bad), 9), 422)
    assert type(back) is agree.ResultValidationError and vars(back) == vars(bad)


def test_unknown_or_missing_error_bodies() -> None:
    assert isinstance(api_errors.decode("<html>", 502), agree.ProtocolError)
    future = api_errors.decode({"error": {"type": "from_the_future", "message": "m"}}, 503)
    assert isinstance(future, agree.UnavailableError) and str(future) == "m"
    # A hand-written body (no exact wire form) still gives the class and its attributes.
    by_hand = {"error": {"type": "not_leader", "message": "ask n2", "leader_id": "n2"}}
    back = api_errors.decode(by_hand, 503)
    assert isinstance(back, agree.NotLeaderError) and back.leader_id == "n2"


def test_schema_from_json_checks_names_and_arity() -> None:
    published = schema_of(Counter).json_schema()
    schema = schema_from_json("counter", published)
    assert set(schema.operations) == {"add", "get", "peek"}
    assert schema.operation("peek").consistency is agree.Consistency.ANY
    add = schema.operation("add")
    assert add.bind([], {}).to_json() == ([], {})  # n has a default
    with pytest.raises(agree.ValidationError):
        add.bind([1, 2], {})
    with pytest.raises(agree.ValidationError):
        add.bind([], {"m": 1})
    with pytest.raises(agree.UnknownMethodError):
        schema.operation("ad")
    with pytest.raises(agree.ProtocolError):
        schema_from_json("counter", {"operations": {"add": {"kind": "command"}}})


def test_thread_loop_keeps_a_coroutines_own_timeout_error() -> None:
    # Regression: concurrent.futures.TimeoutError is the builtin TimeoutError, so an
    # OutcomeUnknownError raised by the call itself used to come back as a generic
    # "did not finish in time", losing the type that says "it may have been applied".
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        runner = ThreadLoop(loop)

        async def in_doubt() -> None:
            raise agree.OutcomeUnknownError("may have been applied")

        with pytest.raises(agree.OutcomeUnknownError, match="may have been applied"):
            runner.run(in_doubt())

        async def slow() -> None:
            await asyncio.sleep(10)

        with pytest.raises(agree.AgreeTimeoutError, match="did not finish in time"):
            runner.run(slow(), timeout=0.05)
        runner.run(asyncio.sleep(0.01))  # let the cancelled call finish
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
