"""AWS's policy language: the grammar of policy documents (``document``), condition operators and
policy variables (``conditions``), the evaluation logic (``evaluation``) and the IAM action and
resource of each operation lambdad serves (``actions``). Pure: no I/O, no store; the authorizer
(``lambdad.api.authorization``) feeds it the policies."""

from lambdad.policy.conditions import Context
from lambdad.policy.document import MalformedPolicy, Policy, PolicyKind, Statement, parse_policy
from lambdad.policy.evaluation import ANONYMOUS, Outcome, Request, evaluate, trusts

__all__ = [
    "ANONYMOUS",
    "Context",
    "MalformedPolicy",
    "Outcome",
    "Policy",
    "PolicyKind",
    "Request",
    "Statement",
    "evaluate",
    "parse_policy",
    "trusts",
]
