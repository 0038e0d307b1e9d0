"""The identity store on SQLite and PostgreSQL: accounts kept apart, names case-insensitive, secrets stored
as given (sealed by the service), versions and attachments, sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from lambdad.store import Database
from lambdad.store import identity as records
from lambdad.store.identity import (
    ROLE,
    USER,
    AccessKeyRecord,
    AccountRecord,
    PolicyRecord,
    RoleRecord,
    SessionRecord,
    UserRecord,
)

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def test_users_are_per_account_and_case_insensitive(database: Database) -> None:
    with database.write() as connection:
        records.insert_account(connection, AccountRecord("111111111111", "a", NOW))
        records.insert_account(connection, AccountRecord("222222222222", "b", NOW))
        records.insert_user(
            connection, UserRecord("111111111111", "Alice", "/", "AIDAAAAAAAAAAAAAAAAAA", NOW)
        )
        records.insert_user(
            connection, UserRecord("222222222222", "Alice", "/x/", "AIDABBBBBBBBBBBBBBBBB", NOW)
        )
    with database.read() as connection:
        assert [a.id for a in records.list_accounts(connection)] == ["111111111111", "222222222222"]
        found = records.get_user(connection, "111111111111", "ALICE")
        assert found is not None and found.name == "Alice" and found.created == NOW
        other = records.get_user(connection, "222222222222", "alice")
        assert other is not None and other.path == "/x/"
        assert records.get_user(connection, "333333333333", "alice") is None
        assert [u.name for u in records.list_users(connection, "222222222222", prefix="/x/", limit=10)] == [
            "Alice"
        ]
        assert records.list_users(connection, "111111111111", prefix="/x/", limit=10) == []
    with pytest.raises(IntegrityError), database.write() as connection:
        records.insert_user(
            connection, UserRecord("111111111111", "alice", "/", "AIDACCCCCCCCCCCCCCCCC", NOW)
        )


def test_user_listing_pages_in_name_order(database: Database) -> None:
    with database.write() as connection:
        for index, name in enumerate(["carol", "Bob", "alice"]):
            records.insert_user(connection, UserRecord("111111111111", name, "/", f"AIDA{index:017d}", NOW))
    with database.read() as connection:
        first = records.list_users(connection, "111111111111", limit=2)
        rest = records.list_users(connection, "111111111111", after=records.key_of(first[-1].name), limit=2)
    assert [u.name for u in first] == ["alice", "Bob"]
    assert [u.name for u in rest] == ["carol"]


def test_access_keys_of_root_and_users(database: Database) -> None:
    with database.write() as connection:
        records.insert_key(
            connection, AccessKeyRecord("AKIAROOT", "111111111111", None, "Active", "k1:x:y", NOW, None)
        )
        records.insert_key(
            connection, AccessKeyRecord("AKIAUSER", "111111111111", "bob", "Active", "k1:x:z", NOW, None)
        )
        assert records.set_key_status(connection, "AKIAUSER", "Inactive")
        records.touch_key(connection, "AKIAROOT", NOW + timedelta(minutes=1))
    with database.read() as connection:
        assert [k.access_key_id for k in records.list_keys(connection, "111111111111", None)] == ["AKIAROOT"]
        user_keys = records.list_keys(connection, "111111111111", "bob")
        assert [(k.access_key_id, k.status, k.sealed_secret) for k in user_keys] == [
            ("AKIAUSER", "Inactive", "k1:x:z")
        ]
        root = records.get_key(connection, "AKIAROOT")
        assert root is not None and root.user is None and root.last_used == NOW + timedelta(minutes=1)
    with database.write() as connection:
        assert records.delete_key(connection, "AKIAUSER")
        assert not records.delete_key(connection, "AKIAUSER")


def test_roles_inline_policies_and_attachments(database: Database) -> None:
    trust = '{"Version":"2012-10-17","Statement":[]}'
    with database.write() as connection:
        records.insert_role(
            connection,
            RoleRecord("111111111111", "Exec", "/service/", "AROAAAAAAAAAAAAAAAAAA", trust, 3600, None, NOW),
        )
        records.put_inline(connection, "111111111111", ROLE, "exec", "logs", "{1}")
        records.put_inline(connection, "111111111111", ROLE, "exec", "logs", "{2}")  # replaces
        records.put_inline(connection, "111111111111", USER, "exec", "logs", "{user}")  # another owner kind
        records.attach(connection, "111111111111", ROLE, "exec", "arn:aws:iam::aws:policy/X", NOW)
        records.attach(
            connection, "111111111111", ROLE, "exec", "arn:aws:iam::aws:policy/X", NOW
        )  # idempotent
        assert records.set_trust_policy(connection, "111111111111", "EXEC", "{new}")
    with database.read() as connection:
        role = records.get_role(connection, "111111111111", "exec")
        assert role is not None and role.trust_policy == "{new}" and role.path == "/service/"
        assert records.list_inline(connection, "111111111111", ROLE, "exec") == [("logs", "{2}")]
        assert records.get_inline(connection, "111111111111", USER, "exec", "logs") == "{user}"
        assert records.attached(connection, "111111111111", ROLE, "exec") == ["arn:aws:iam::aws:policy/X"]
        assert records.attachment_count(connection, "111111111111", "arn:aws:iam::aws:policy/X") == 1
        assert records.attachment_counts(connection, "222222222222") == {}
    with database.write() as connection:
        assert records.detach(connection, "111111111111", ROLE, "exec", "arn:aws:iam::aws:policy/X")
        assert records.delete_inline(connection, "111111111111", ROLE, "exec", "logs")
        assert records.delete_role(connection, "111111111111", "exec")


def test_managed_policies_keep_their_versions(database: Database) -> None:
    record = PolicyRecord("111111111111", "Deploy", "/", "ANPAAAAAAAAAAAAAAAAAA", "v1", 2, "d", NOW, NOW)
    with database.write() as connection:
        records.insert_policy(connection, record, '{"v": 1}')
    with database.read() as connection:
        found = records.get_policy(connection, "111111111111", "deploy")
        assert found == record
        version = records.get_version(connection, "111111111111", "Deploy", "v1")
        assert version is not None and version.document == '{"v": 1}'
        assert [v.version_id for v in records.list_versions(connection, "111111111111", "Deploy")] == ["v1"]
        assert [p.name for p in records.list_policies(connection, "111111111111")] == ["Deploy"]
    with database.write() as connection:
        assert records.delete_policy(connection, "111111111111", "Deploy")
    with database.read() as connection:
        assert records.get_version(connection, "111111111111", "Deploy", "v1") is None


def test_sessions_are_kept_until_a_day_past_expiry(database: Database) -> None:
    def session(key: str, expires: datetime) -> SessionRecord:
        role = "arn:aws:iam::111111111111:role/r"
        return SessionRecord(key, "111111111111", role, "AROAX", "s", "k1:a:b", "0" * 64, NOW, expires)

    with database.write() as connection:
        records.insert_session(connection, session("ASIAOLD", NOW - timedelta(days=2)))
        records.insert_session(connection, session("ASIARECENT", NOW - timedelta(hours=1)))
        assert records.delete_sessions_expired_before(connection, NOW - timedelta(days=1)) == 1
    with database.read() as connection:
        assert records.get_session(connection, "ASIAOLD") is None
        recent = records.get_session(connection, "ASIARECENT")
        assert (
            recent is not None
            and recent.expires == NOW - timedelta(hours=1)
            and recent.token_sha256 == "0" * 64
        )
