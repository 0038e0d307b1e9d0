"""Where one invocation runs: the choice alone, from what every node's heartbeat says and what this node
knows of itself right now (no I/O: ``forwarding.py`` feeds it, with the time, and acts on it).

The rule (issue 11, point 4): an idle warm environment of the function here; else on a node whose
heartbeat reports one (the least busy of those); else the least-loaded eligible node: fewest busy
environments, then fewest warm ones (environments, and the memory they hold, spread over the nodes), this
node on ties (no hop).

Heartbeats are up to a second old, so the counts are corrected by what this node itself saw
(``Forwarded``): invocations it forwarded and that are not answered yet (two invokes arriving together do
not both go to the one idle environment a heartbeat reported), and the ones answered in the last
RECENT seconds (their environments are idle again, though a heartbeat sent while they ran says busy:
without this, the next invoke of a long-running function would cold-start elsewhere, and a steady
stream of forwarded invokes would move wherever a heartbeat happened to catch them busy). Were those
environments stopped meanwhile, the target cold-starts: correct, only slower. Two nodes
may still send one idle environment two invokes; the second then cold-starts on the target, which is
correct, only slower (no distributed lock on the warm path).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from lambdad.cluster.membership import Heartbeat, NodeLoad
from lambdad.models import FunctionVersion

#: Whether a function version may run on a node (its heartbeat carries the node's capacity provider).
#: The default admits every node; capacity providers narrow it (the composition root passes their rule).
Eligibility = Callable[[FunctionVersion, Heartbeat], bool]


#: How long a node that ran N of this node's invocations of a function at once is taken to still have N
#: environments of it (seconds).
RECENT = 2.0


def every_node(version: FunctionVersion, node: Heartbeat) -> bool:
    return True


@dataclass
class Forwarded:
    """What this node forwarded, per node and function: the invocations not answered yet, and when one
    was last answered with how many of this node's ran there at once lately (the target has at least
    that many environments of the function, idle again once answered)."""

    by_node: Counter[str] = field(default_factory=Counter)
    by_function: Counter[tuple[str, str]] = field(default_factory=Counter)
    answered: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def sent(self, node_id: str, function_arn: str) -> None:
        self.by_node[node_id] += 1
        self.by_function[(node_id, function_arn)] += 1

    def done(self, node_id: str, function_arn: str, answered_at: float | None) -> None:
        """The forwarded invocation ended (``answered_at``: when, if the target answered it all)."""
        key = (node_id, function_arn)
        running = self.by_function[key]
        self.by_node[node_id] -= 1
        self.by_function[key] -= 1
        # Counters keep zeros: drop them, so that nodes and functions long gone leave nothing behind.
        self.by_node += Counter()
        self.by_function += Counter()
        if answered_at is not None:
            last = self.answered.get(key)
            if last is not None and answered_at - last[0] < RECENT:
                running = max(running, last[1])
            self.answered[key] = (answered_at, running)
            if len(self.answered) > 4096:  # functions no longer invoked: forget what is no longer recent
                self.answered = {k: v for k, v in self.answered.items() if answered_at - v[0] < RECENT}


@dataclass(frozen=True)
class Candidate:
    """A node that may run the invocation, as the choice sees it."""

    node_id: str
    url: str
    load: NodeLoad
    heartbeat: Heartbeat


def choose(
    function_arn: str,
    here: Candidate,
    others: list[Candidate],
    forwarded: Forwarded | None = None,
    now: float = 0.0,
    admits: Callable[[Heartbeat], bool] = lambda node: True,
) -> list[Candidate]:
    """The nodes to try, best first (``here`` among them when it may run the function). An empty list
    means no node may run it: the caller runs it here, whose answer then says why."""
    forwarded = forwarded or Forwarded()
    nodes = [node for node in (here, *others) if admits(node.heartbeat)]

    def idle(node: Candidate) -> int:
        if node is here:
            return node.load.idle.get(function_arn, 0)
        reported = node.load.idle.get(function_arn, 0)
        answered_at, running = forwarded.answered.get((node.node_id, function_arn), (-RECENT, 0))
        if now - answered_at < RECENT:  # it answered lately: those environments are idle again
            reported = max(reported, running)
        return reported - forwarded.by_function[(node.node_id, function_arn)]

    def busy(node: Candidate) -> int:
        return node.load.busy_environments + (0 if node is here else forwarded.by_node[node.node_id])

    if here in nodes and idle(here) > 0:
        return [here, *(node for node in nodes if node is not here)]
    # Warm elsewhere first (most idle, then least busy), then the rest by load; this node wins ties.
    ranked = sorted(
        nodes,
        key=lambda node: (
            -min(idle(node), 1),
            busy(node),
            node.load.warm_environments,
            node is not here,
            node.node_id,
        ),
    )
    return ranked
