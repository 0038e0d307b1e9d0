"""``RoleActions``: what a role lambdad acts with may do (schedules, mappings, destinations): the trust of
the service assuming it, then the role session's policies; a role the store does not know is not
checked; a broker's queue is decided by the role's identity policy alone, a function by its own policy
too."""

from __future__ import annotations

import json

from lambdad.api.authorization import Authorizer, RoleActions
from tests.api.test_authorization import FN, Resources, Store, document

A, B = "111111111111", "222222222222"
ROLE = f"arn:aws:iam::{A}:role/worker"
QUEUE_ELSEWHERE = f"arn:aws:sqs:eu-west-1:{B}:jobs"


def trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def actions() -> tuple[RoleActions, Store, Resources]:
    store, resources = Store(), Resources()
    return RoleActions(store, Authorizer(store, resources)), store, resources


def test_an_unknown_role_is_not_checked() -> None:
    roles, _, _ = actions()
    assert roles.denial(ROLE, "lambda:InvokeFunction", f"{FN}:f", service="x", session="s") is None


def test_the_service_must_be_trusted_and_the_session_allowed() -> None:
    roles, store, _ = actions()
    store.trust[ROLE] = trust("lambda.amazonaws.com")
    assert roles.denial(
        ROLE, "lambda:InvokeFunction", f"{FN}:f", service="scheduler.amazonaws.com", session="s"
    ) == (f"scheduler.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: {ROLE}")
    store.trust[ROLE] = trust("scheduler.amazonaws.com")
    assert roles.denial(
        ROLE, "lambda:InvokeFunction", f"{FN}:f", service="scheduler.amazonaws.com", session="s"
    ) == (
        f"User: arn:aws:sts::{A}:assumed-role/worker/s is not authorized to perform: "
        f"lambda:InvokeFunction on resource: {FN}:f because no identity-based policy allows the "
        "lambda:InvokeFunction action"
    )
    store.policies[ROLE] = [document({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})]
    assert (
        roles.denial(ROLE, "lambda:InvokeFunction", f"{FN}:f", service="scheduler.amazonaws.com", session="s")
        is None
    )


def test_a_function_destination_may_be_allowed_by_its_own_policy() -> None:
    roles, store, resources = actions()
    store.trust[ROLE] = trust("lambda.amazonaws.com")
    target = f"{FN}:sink"
    assert roles.denial(ROLE, "lambda:InvokeFunction", target, service="lambda.amazonaws.com", session="f")
    resources.statements[target] = [
        {
            "Sid": "s",
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "lambda:InvokeFunction",
            "Resource": target,
        }
    ]
    assert (
        roles.denial(ROLE, "lambda:InvokeFunction", target, service="lambda.amazonaws.com", session="f")
        is None
    )


def test_a_brokers_queue_is_decided_by_the_identity_policy_alone_whatever_its_account() -> None:
    roles, store, _ = actions()
    store.trust[ROLE] = trust("lambda.amazonaws.com")
    assert roles.denial(
        ROLE, "sqs:ReceiveMessage", QUEUE_ELSEWHERE, service="lambda.amazonaws.com", session="f"
    )
    store.policies[ROLE] = [
        document({"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": QUEUE_ELSEWHERE})
    ]
    assert (
        roles.denial(ROLE, "sqs:ReceiveMessage", QUEUE_ELSEWHERE, service="lambda.amazonaws.com", session="f")
        is None
    )
    store.policies[ROLE].append(document({"Effect": "Deny", "Action": "sqs:*", "Resource": "*"}))
    assert roles.denial(
        ROLE, "sqs:ReceiveMessage", QUEUE_ELSEWHERE, service="lambda.amazonaws.com", session="f"
    )


def test_a_trust_policy_may_test_the_source_the_service_acts_for() -> None:
    """AWS's confused-deputy guard: the scheduler assumes the role for schedules of one account only."""
    roles, store, _ = actions()
    guarded = json.loads(trust("scheduler.amazonaws.com"))
    guarded["Statement"][0]["Condition"] = {"StringEquals": {"aws:SourceAccount": A}}
    store.trust[ROLE] = json.dumps(guarded)
    store.policies[ROLE] = [document({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})]
    ask = {"service": "scheduler.amazonaws.com", "session": "s"}
    schedule = f"arn:aws:scheduler:eu-west-1:{A}:schedule/default/s"
    mine = {"aws:SourceAccount": A, "aws:SourceArn": schedule}
    assert roles.denial(ROLE, "lambda:InvokeFunction", f"{FN}:f", context=mine, **ask) is None
    theirs = {"aws:SourceAccount": B, "aws:SourceArn": schedule.replace(A, B)}
    assert roles.denial(ROLE, "lambda:InvokeFunction", f"{FN}:f", context=theirs, **ask) == (
        f"scheduler.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: {ROLE}"
    )
