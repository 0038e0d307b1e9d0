"""The placement rule alone: warm here, else warm elsewhere, else the least loaded; corrected by what this
node forwarded; eligibility narrows the nodes."""

from __future__ import annotations

from lambdad.cluster.membership import Heartbeat, NodeLoad
from lambdad.cluster.placement import Candidate, Forwarded, choose

ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"


def node(node_id: str, busy: int = 0, warm: int = 0, idle: int = 0) -> Candidate:
    load = NodeLoad(warm_environments=warm, busy_environments=busy, idle={ARN: idle} if idle else {})
    heartbeat = Heartbeat(node_id, f"http://{node_id}", "i", "", "", node_id.upper(), load, {})
    return Candidate(node_id, heartbeat.url, load, heartbeat)


def order(nodes: list[Candidate]) -> list[str]:
    return [candidate.node_id for candidate in nodes]


def test_an_idle_environment_here_runs_here_even_on_a_busier_node() -> None:
    assert order(choose(ARN, node("n1", busy=5, idle=1), [node("n2"), node("n3")]))[0] == "n1"


def test_an_idle_environment_elsewhere_comes_before_a_new_one_here() -> None:
    assert order(choose(ARN, node("n1"), [node("n2", busy=3, warm=4, idle=1), node("n3")]))[0] == "n2"


def test_with_no_idle_environment_the_least_busy_then_least_warm_node_wins_and_here_wins_ties() -> None:
    assert order(choose(ARN, node("n1", busy=1), [node("n2", warm=3), node("n3", warm=1)])) == [
        "n3",
        "n2",
        "n1",
    ]
    assert order(choose(ARN, node("n1", warm=1), [node("n2", warm=1), node("n3", warm=1)]))[0] == "n1"


def test_invocations_in_flight_use_up_a_reported_idle_environment_and_count_as_busy() -> None:
    forwarded = Forwarded()
    forwarded.sent("n2", ARN)
    nodes = choose(ARN, node("n1", busy=1), [node("n2", idle=1), node("n3")], forwarded)
    assert order(nodes)[0] == "n3"  # n2's one idle environment is taken by the invoke in flight


def test_environments_that_answered_lately_are_idle_again_whatever_a_heartbeat_says() -> None:
    forwarded = Forwarded()
    for _ in range(2):
        forwarded.sent("n2", ARN)
    forwarded.done("n2", ARN, 11.0)  # two ran there at once
    forwarded.done("n2", ARN, 11.1)
    assert forwarded.by_function == {} and forwarded.by_node == {}
    forwarded.sent("n2", ARN)
    # Its heartbeat (sent while they ran) says none is idle: n2 still has a second idle environment.
    nodes = [node("n2", busy=2), node("n3")]
    assert order(choose(ARN, node("n1", busy=1), nodes, forwarded, now=12.0))[0] == "n2"
    # Long after, the heartbeat is believed instead.
    assert order(choose(ARN, node("n1", busy=1), nodes, forwarded, now=20.0))[0] == "n3"


def test_nodes_the_rule_refuses_are_never_chosen() -> None:
    nodes = choose(
        ARN, node("n1", idle=1), [node("n2"), node("n3")], admits=lambda hb: hb.capacity_provider == "N3"
    )
    assert order(nodes) == ["n3"]
    assert choose(ARN, node("n1"), [node("n2")], admits=lambda hb: False) == []
