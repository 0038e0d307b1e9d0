"""Roles acting (``--auth sigv4``): a schedule fires its target only when its ``Target.RoleArn`` trusts
``scheduler.amazonaws.com`` and allows ``lambda:InvokeFunction`` on it; otherwise the attempt fails with
AccessDeniedException (AWS's message for the role's session) and the function never sees the event.
CreateEventSourceMapping and PutFunctionEventInvokeConfig refuse, with AWS's message, a function whose
execution role may not read the source or deliver to the destination. A role the identity store does not
know keeps lambdad's earlier behaviour (not checked)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.invoke_support import deploy_python, log_messages, unique
from tests.e2e.signed_support import ACCOUNT, client, lambda_role, signed_server
from tests.support import Server

pytestmark = pytest.mark.e2e
SCHEDULE_ENV = {"LAMBDAD_SCHEDULE_MINUTE_SECONDS": "2", "LAMBDAD_SCHEDULE_TICK_SECONDS": "0.2"}
RECORDER = """
import json
def handler(event, context):
    print("EVENT " + json.dumps(event))
    return event
"""


def trusting(service: str) -> dict[str, Any]:
    """A trust policy for ``service``, with the confused-deputy guard AWS recommends (the source account)."""
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    statement["Condition"] = {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = signed_server(tmp_path_factory.mktemp("lambdad") / "data")
    running.env.update(SCHEDULE_ENV)
    running.start(timeout=60)
    yield running
    running.stop(timeout=60)


def role(iam: Any, service: str, *statements: dict[str, Any]) -> str:
    name = unique("sched-role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trusting(service)))["Role"][
        "Arn"
    ]
    if statements:
        document = {"Version": "2012-10-17", "Statement": list(statements)}
        iam.put_role_policy(RoleName=name, PolicyName="given", PolicyDocument=json.dumps(document))
    return str(arn)


def schedule_results(server: Server) -> dict[str, str | None]:
    return {s["Name"]: s["LastResult"] for s in server.own("/_lambdad/schedules", timeout=5)["Schedules"]}


def test_a_schedule_invokes_only_with_a_role_that_may(server: Server) -> None:
    iam = client(server, "iam")
    name = unique("scheduled")
    arn = deploy_python(client(server, "lambda"), name, RECORDER, Role=lambda_role(iam, unique("fn-role")))[
        "FunctionArn"
    ]
    invoke = {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}
    roles = {
        "allowed": role(iam, "scheduler.amazonaws.com", invoke),
        "no-permission": role(iam, "scheduler.amazonaws.com"),
        "not-trusted": role(iam, "lambda.amazonaws.com", invoke),
        "unknown": f"arn:aws:iam::{ACCOUNT}:role/never-made",
    }
    scheduler = client(server, "scheduler")
    names = {case: unique(case) for case in roles}
    for case, role_arn in roles.items():
        scheduler.create_schedule(
            Name=names[case],
            ScheduleExpression="rate(1 minute)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": arn,
                "RoleArn": role_arn,
                "Input": json.dumps({"case": case}),
                "RetryPolicy": {"MaximumRetryAttempts": 0},
            },
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        results = schedule_results(server)
        if all(results.get(names[case]) for case in roles):
            break
        time.sleep(0.2)
    for case in roles:
        scheduler.delete_schedule(Name=names[case])
    assert results[names["allowed"]] == "Invoked (Event)"
    assert results[names["unknown"]] == "Invoked (Event)"  # not the store's: not checked, as before
    role_name = roles["no-permission"].rsplit("/", 1)[1]
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{names['no-permission']}"
    assert results[names["no-permission"]] == (
        f"AccessDeniedException: User: {session} is not authorized to perform: lambda:InvokeFunction on "
        f"resource: {arn} because no identity-based policy allows the lambda:InvokeFunction action"
    )
    assert results[names["not-trusted"]] == (
        "AccessDeniedException: scheduler.amazonaws.com is not authorized to perform: sts:AssumeRole on "
        f"resource: {roles['not-trusted']}"
    )
    deadline = time.monotonic() + 30
    seen: set[str] = set()
    while time.monotonic() < deadline and seen != {"allowed", "unknown"}:
        seen = {
            json.loads(m.split("EVENT ", 1)[1])["case"] for m in log_messages(server, name) if "EVENT " in m
        }
        time.sleep(0.2)
    assert seen == {"allowed", "unknown"}


SQS_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:w2-queue"
SNS_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:w2-topic"


def test_mappings_and_destinations_need_their_execution_roles_permissions(server: Server) -> None:
    iam = client(server, "iam")
    lam = client(server, "lambda")
    receive = {
        "Effect": "Allow",
        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        "Resource": SQS_ARN,
    }
    send = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": SQS_ARN}
    cases = {
        "bare": lambda_role(iam, unique("bare")),
        "receive-only": lambda_role(iam, unique("receiver"), {**receive, "Action": "sqs:ReceiveMessage"}),
        "able": lambda_role(iam, unique("able"), receive, send),
    }
    names = {}
    for case, role_arn in cases.items():
        names[case] = unique(f"esm-{case}")
        deploy_python(lam, names[case], RECORDER, Role=role_arn)
    refusals = {
        "bare": "The provided execution role does not have permissions to call ReceiveMessage on SQS",
        "receive-only": "The provided execution role does not have permissions to call DeleteMessage on SQS",
    }
    for case, message in refusals.items():
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
            lam.create_event_source_mapping(FunctionName=names[case], EventSourceArn=SQS_ARN, Enabled=False)
        assert refused.value.response["Error"]["Message"] == message
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
            lam.put_function_event_invoke_config(
                FunctionName=names[case], DestinationConfig={"OnFailure": {"Destination": SQS_ARN}}
            )
        assert refused.value.response["Error"]["Message"] == (
            "The provided execution role does not have permissions to call SendMessage on SQS"
        )
    made = lam.create_event_source_mapping(FunctionName=names["able"], EventSourceArn=SQS_ARN, Enabled=False)
    lam.put_function_event_invoke_config(
        FunctionName=names["able"], DestinationConfig={"OnFailure": {"Destination": SQS_ARN}}
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
        lam.update_function_event_invoke_config(
            FunctionName=names["able"], DestinationConfig={"OnSuccess": {"Destination": SNS_ARN}}
        )
    assert refused.value.response["Error"]["Message"] == (
        "The provided execution role does not have permissions to call Publish on SNS"
    )
    # Moved to a function whose role may not: refused again, and the mapping stays as it was.
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
        lam.update_event_source_mapping(UUID=made["UUID"], FunctionName=names["bare"])
    assert refused.value.response["Error"]["Message"] == refusals["bare"]
    assert lam.get_event_source_mapping(UUID=made["UUID"])["FunctionArn"].endswith(f":{names['able']}")
    lam.delete_event_source_mapping(UUID=made["UUID"])


def test_a_dead_letter_queue_needs_the_execution_roles_permission(server: Server) -> None:
    iam = client(server, "iam")
    lam = client(server, "lambda")
    bare = lambda_role(iam, unique("dlq-bare"))
    able = lambda_role(
        iam, unique("dlq-able"), {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": SQS_ARN}
    )
    refusal = "The provided execution role does not have permissions to call SendMessage on SQS"
    name = unique("dlq")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
        deploy_python(lam, name, RECORDER, Role=bare, DeadLetterConfig={"TargetArn": SQS_ARN})
    assert refused.value.response["Error"]["Message"] == refusal
    deploy_python(lam, name, RECORDER, Role=able, DeadLetterConfig={"TargetArn": SQS_ARN})
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
        lam.update_function_configuration(FunctionName=name, Role=bare)
    assert refused.value.response["Error"]["Message"] == refusal
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
        lam.update_function_configuration(FunctionName=name, DeadLetterConfig={"TargetArn": SNS_ARN})
    assert refused.value.response["Error"]["Message"] == (
        "The provided execution role does not have permissions to call Publish on SNS"
    )


DESTINATION_RECORDER = """
import json
def handler(event, context):
    print("RECORD " + json.dumps(event.get("requestPayload")))
    return None
"""


def test_a_destination_gets_records_only_while_the_role_may_deliver_them(server: Server) -> None:
    iam = client(server, "iam")
    lam = client(server, "lambda")
    destination = unique("dest")
    destination_arn = deploy_python(
        lam, destination, DESTINATION_RECORDER, Role=lambda_role(iam, unique("d"))
    )["FunctionArn"]
    role_name = unique("sender")
    role = lambda_role(
        iam, role_name, {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": destination_arn}
    )
    source = unique("source")
    deploy_python(lam, source, RECORDER, Role=role)
    lam.put_function_event_invoke_config(
        FunctionName=source, DestinationConfig={"OnSuccess": {"Destination": destination_arn}}
    )

    def recorded() -> list[Any]:
        return [
            json.loads(m.split("RECORD ", 1)[1]) for m in log_messages(server, destination) if "RECORD " in m
        ]

    lam.invoke(FunctionName=source, InvocationType="Event", Payload=json.dumps({"n": 1}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and recorded() != [{"n": 1}]:
        time.sleep(0.2)
    assert recorded() == [{"n": 1}]
    # The role loses the permission: the next record is not delivered (the function itself still runs).
    iam.delete_role_policy(RoleName=role_name, PolicyName="given")
    lam.invoke(FunctionName=source, InvocationType="Event", Payload=json.dumps({"n": 2}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any('"n": 2' in m for m in log_messages(server, source)):
        time.sleep(0.2)
    assert any('"n": 2' in m for m in log_messages(server, source))
    time.sleep(2)
    assert recorded() == [{"n": 1}]
    said = " ".join(server.log_path.read_text().split())  # the server's log wraps its lines
    assert "not delivered to" in said and "the execution role may not" in said
