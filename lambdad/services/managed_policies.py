"""Managed policies: the customer managed policies of each account (with versions, as IAM keeps them) and
the AWS managed policies Lambda users attach, which are the same in every account: a data file
(``aws_managed_policies.json``, from AWS's managed policy reference), attachable by ARN, never stored.
Attachments to users and roles are kept here too; ``IdentityService`` owns the users and roles.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Connection

from lambdad.errors import DeleteConflict, EntityAlreadyExists, InvalidInput, LimitExceeded, NoSuchEntity
from lambdad.services import iam_checks as checks
from lambdad.store import Database
from lambdad.store import identity as records
from lambdad.store.identity import PolicyRecord, PolicyVersionRecord

POLICY_VERSIONS_MAX = 5
POLICY_ARN = re.compile(
    r"arn:aws:iam::(?P<account>\d{12}|aws):policy(?P<path>/(?:[\x21-\x7e]*/)?)(?P<name>[\w+=,.@-]+)"
)
#: (connection, account, kind, name) -> the user's or role's name as stored; NoSuchEntity if none.
OwnerLookup = Callable[[Connection, str, str, str], str]


def policy_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:policy{path}{name}"


@cache
def aws_managed_policies() -> dict[str, dict[str, Any]]:
    """The AWS managed policies lambdad knows, by ARN."""
    data = json.loads(resources.files("lambdad.services").joinpath("aws_managed_policies.json").read_text())
    found = {}
    for policy in data["Policies"]:
        arn = policy_arn("aws", policy["Path"], policy["PolicyName"])
        found[arn] = {**policy, "Arn": arn, "Document": json.dumps(policy["Document"], indent=4)}
    return found


def _aws_policy_id(name: str) -> str:
    # Stable across servers: ANPA + 17 characters derived from the name.
    digest = hashlib.sha256(name.encode()).digest()
    return "ANPA" + "".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[byte % 32] for byte in digest[:17])


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class ManagedPolicies:
    """CreatePolicy and its kin, in the caller's account; attachments to the users and roles ``owner``
    finds."""

    def __init__(
        self,
        database: Database,
        owner: OwnerLookup,
        check_document: Callable[[str], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._database = database
        self._owner = owner
        self._check_document = check_document
        self._clock = clock

    def default_document(self, connection: Connection, account: str, arn: str) -> str | None:
        """The default version's document of the policy ``arn`` (AWS managed or the account's own)."""
        known = aws_managed_policies().get(arn)
        if known is not None:
            return str(known["Document"])
        match = POLICY_ARN.fullmatch(arn)
        if match is None or match["account"] != account:
            return None
        policy = records.get_policy(connection, account, match["name"])
        if policy is None:
            return None
        version = records.get_version(connection, account, policy.name, policy.default_version)
        return version.document if version else None

    def create_policy(
        self, account: str, name: str, document: str, path: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        checks.check_name(name, "policyName", 128)
        path = path or "/"
        checks.check_path(path)
        if description is not None:
            checks.check_length(description, "description", 1000)
        if checks.compact_size(document) > checks.MANAGED_POLICY_MAX:
            raise LimitExceeded(f"Cannot exceed quota for PolicySize: {checks.MANAGED_POLICY_MAX}")
        self._check_document(document)
        now = self._clock()
        record = PolicyRecord(account, name, path, checks.unique_id("ANPA"), "v1", 2, description, now, now)
        message = f"A policy called {name} already exists. Duplicate names are not allowed."
        with checks.writing(self._database, message) as connection:
            if records.get_policy(connection, account, name) is not None:
                raise EntityAlreadyExists(message)
            records.insert_policy(connection, record, document)
        return self._policy(record, 0)

    def get_policy(self, account: str, arn: str) -> dict[str, Any]:
        with self._database.read() as connection:
            known = aws_managed_policies().get(arn)
            if known is not None:
                return _aws_policy(known, records.attachment_count(connection, account, arn))
            record = self._customer_policy(connection, account, arn)
            return self._policy(record, records.attachment_count(connection, account, arn))

    def delete_policy(self, account: str, arn: str) -> None:
        with self._database.write() as connection:
            if arn in aws_managed_policies():
                raise InvalidInput(f"Policy {arn} is an AWS managed policy: it cannot be deleted.")
            record = self._customer_policy(connection, account, arn)
            if records.attachment_count(connection, account, arn):
                raise DeleteConflict("Cannot delete a policy attached to entities.")
            if len(records.list_versions(connection, account, record.name)) > 1:
                raise DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the "
                    "policy's versions. The default version is deleted with the policy."
                )
            records.delete_policy(connection, account, record.name)

    def list_policies(
        self,
        account: str,
        scope: str | None,
        only_attached: bool,
        prefix: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """ListPolicies: AWS managed ones (Scope AWS), the account's (Local), or both (All, the default),
        in that order, each in name order."""
        limit = checks.max_items(max_items)
        prefix = prefix or "/"
        scope = scope or "All"
        with self._database.read() as connection:
            counts = records.attachment_counts(connection, account)
            found: list[tuple[str, dict[str, Any]]] = []
            if scope in ("All", "AWS"):
                for arn, known in sorted(
                    aws_managed_policies().items(), key=lambda item: item[1]["PolicyName"].lower()
                ):
                    if known["Path"].startswith(prefix):
                        found.append(
                            (f"0{known['PolicyName'].lower()}", _aws_policy(known, counts.get(arn, 0)))
                        )
            if scope in ("All", "Local"):
                for record in records.list_policies(connection, account, prefix=prefix):
                    arn = policy_arn(account, record.path, record.name)
                    found.append(
                        (f"1{records.key_of(record.name)}", self._policy(record, counts.get(arn, 0)))
                    )
        if only_attached:
            found = [(key, policy) for key, policy in found if policy["AttachmentCount"]]
        start = checks.after(marker)
        if start is not None:
            found = [(key, policy) for key, policy in found if key > start]
        page, next_marker = checks.page(found[: limit + 1], limit, lambda item: item[0])
        return [policy for _, policy in page], next_marker

    def create_policy_version(
        self, account: str, arn: str, document: str, set_as_default: bool
    ) -> dict[str, Any]:
        """A new version of a customer managed policy (at most five are kept, as IAM)."""
        if checks.compact_size(document) > checks.MANAGED_POLICY_MAX:
            raise LimitExceeded(f"Cannot exceed quota for PolicySize: {checks.MANAGED_POLICY_MAX}")
        self._check_document(document)
        now = self._clock()
        with self._database.write() as connection:
            record = self._customer_policy(connection, account, arn)
            if len(records.list_versions(connection, account, record.name)) >= POLICY_VERSIONS_MAX:
                raise LimitExceeded(
                    f"A managed policy can have up to {POLICY_VERSIONS_MAX} versions. Before you create a new"
                    " version, you must delete an existing version."
                )
            version = PolicyVersionRecord(f"v{record.next_version}", document, now)
            records.insert_version(connection, account, record.name, version)
            if set_as_default:
                records.set_default_version(connection, account, record.name, version.version_id, now)
        return _version(document, version.version_id, set_as_default, now)

    def set_default_policy_version(self, account: str, arn: str, version_id: str) -> None:
        with self._database.write() as connection:
            record = self._customer_policy(connection, account, arn)
            if records.get_version(connection, account, record.name, version_id) is None:
                raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")
            records.set_default_version(connection, account, record.name, version_id, self._clock())

    def delete_policy_version(self, account: str, arn: str, version_id: str) -> None:
        with self._database.write() as connection:
            record = self._customer_policy(connection, account, arn)
            if version_id == record.default_version:
                raise DeleteConflict("Cannot delete the default version of a policy.")
            if not records.delete_version(connection, account, record.name, version_id):
                raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")

    def get_policy_version(self, account: str, arn: str, version_id: str) -> dict[str, Any]:
        with self._database.read() as connection:
            known = aws_managed_policies().get(arn)
            if known is not None:
                if version_id != known["DefaultVersionId"]:
                    raise NoSuchEntity(
                        f"Policy {arn} version {version_id} does not exist or is not attachable."
                    )
                return _version(known["Document"], version_id, True, _timestamp(known["UpdateDate"]))
            record = self._customer_policy(connection, account, arn)
            version = records.get_version(connection, account, record.name, version_id)
        if version is None:
            raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")
        return _version(
            version.document,
            version.version_id,
            version.version_id == record.default_version,
            version.created,
        )

    def list_policy_versions(self, account: str, arn: str) -> list[dict[str, Any]]:
        with self._database.read() as connection:
            known = aws_managed_policies().get(arn)
            if known is not None:
                return [
                    _version(
                        known["Document"], known["DefaultVersionId"], True, _timestamp(known["UpdateDate"])
                    )
                ]
            record = self._customer_policy(connection, account, arn)
            found = records.list_versions(connection, account, record.name)
        return [
            _version(v.document, v.version_id, v.version_id == record.default_version, v.created)
            for v in found
        ]

    def attach_policy(self, account: str, kind: str, owner: str, arn: str) -> None:
        with self._database.write() as connection:
            owner_name = self._owner(connection, account, kind, owner)
            if arn not in aws_managed_policies():
                match = POLICY_ARN.fullmatch(arn)
                if match is None:
                    raise InvalidInput(f"ARN {arn} is not valid.")
                if (
                    match["account"] != account
                    or records.get_policy(connection, account, match["name"]) is None
                ):
                    raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
            records.attach(connection, account, kind, records.key_of(owner_name), arn, self._clock())

    def detach_policy(self, account: str, kind: str, owner: str, arn: str) -> None:
        with self._database.write() as connection:
            owner_name = self._owner(connection, account, kind, owner)
            if POLICY_ARN.fullmatch(arn) is None:
                raise InvalidInput(f"ARN {arn} is not valid.")
            if not records.detach(connection, account, kind, records.key_of(owner_name), arn):
                raise NoSuchEntity(f"Policy {arn} was not found.")

    def list_attached_policies(
        self,
        account: str,
        kind: str,
        owner: str,
        prefix: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> tuple[list[dict[str, str]], str | None]:
        limit = checks.max_items(max_items)
        with self._database.read() as connection:
            owner_key = records.key_of(self._owner(connection, account, kind, owner))
            arns = records.attached(connection, account, kind, owner_key)
        found = []
        for arn in arns:
            match = POLICY_ARN.fullmatch(arn)
            if match is not None and match["path"].startswith(prefix or "/"):
                found.append({"PolicyName": match["name"], "PolicyArn": arn})
        start = checks.after(marker)
        if start is not None:
            found = [item for item in found if item["PolicyArn"] > start]
        return checks.page(found[: limit + 1], limit, lambda item: item["PolicyArn"])

    def _customer_policy(self, connection: Connection, account: str, arn: str) -> PolicyRecord:
        match = POLICY_ARN.fullmatch(arn)
        if match is None:
            raise InvalidInput(f"ARN {arn} is not valid.")
        record = (
            records.get_policy(connection, account, match["name"]) if match["account"] == account else None
        )
        if record is None or policy_arn(account, record.path, record.name) != arn:
            raise NoSuchEntity(f"Policy {arn} was not found.")
        return record

    def _policy(self, record: PolicyRecord, attachments: int) -> dict[str, Any]:
        policy = {
            "PolicyName": record.name,
            "PolicyId": record.policy_id,
            "Arn": policy_arn(record.account, record.path, record.name),
            "Path": record.path,
            "DefaultVersionId": record.default_version,
            "AttachmentCount": attachments,
            "PermissionsBoundaryUsageCount": 0,
            "IsAttachable": True,
            "CreateDate": record.created,
            "UpdateDate": record.updated,
        }
        if record.description is not None:
            policy["Description"] = record.description
        return policy


def _aws_policy(known: dict[str, Any], attachments: int) -> dict[str, Any]:
    return {
        "PolicyName": known["PolicyName"],
        "PolicyId": _aws_policy_id(known["PolicyName"]),
        "Arn": known["Arn"],
        "Path": known["Path"],
        "DefaultVersionId": known["DefaultVersionId"],
        "AttachmentCount": attachments,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "Description": known["Description"],
        "CreateDate": _timestamp(known["CreateDate"]),
        "UpdateDate": _timestamp(known["UpdateDate"]),
    }


def _version(document: str, version_id: str, default: bool, created: datetime) -> dict[str, Any]:
    return {
        "Document": checks.encoded(document),
        "VersionId": version_id,
        "IsDefaultVersion": default,
        "CreateDate": created,
    }
