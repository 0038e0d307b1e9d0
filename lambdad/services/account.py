"""GetAccountSettings: the account's limits and what it uses of them."""

from __future__ import annotations

from dataclasses import dataclass

from lambdad.models import Scope
from lambdad.services import limits
from lambdad.store import Database
from lambdad.store import functions as function_records


@dataclass(frozen=True)
class AccountSettings:
    """Limits and usage, in AWS's terms."""

    total_code_size_limit: int
    code_size_unzipped: int
    code_size_zipped: int
    concurrent_executions: int
    unreserved_concurrent_executions: int
    total_code_size: int
    function_count: int


class AccountService:
    """Account-wide settings for one region."""

    def __init__(
        self,
        database: Database,
        code_storage_limit: int,
        concurrent_executions: int = limits.CONCURRENT_EXECUTIONS,
    ) -> None:
        self._database = database
        self._code_storage_limit = code_storage_limit
        self._concurrent_executions = concurrent_executions

    def settings(self, scope: Scope) -> AccountSettings:
        """Limits and current usage in the scope's region."""
        with self._database.read() as connection:
            count, _zipped = function_records.usage(connection, scope)
            # What the code-storage limit counts (services.code.check_storage), so that usage and limit
            # compare: the server's packages, zipped plus unzipped.
            size = sum(function_records.code_in_use(connection).packages.values())
            reserved = function_records.total_reserved_concurrency(connection, scope)
        return AccountSettings(
            total_code_size_limit=self._code_storage_limit,
            code_size_unzipped=limits.UNZIPPED_CODE_MAX,
            code_size_zipped=limits.ZIPPED_CODE_MAX,
            concurrent_executions=self._concurrent_executions,
            unreserved_concurrent_executions=self._concurrent_executions - reserved,
            total_code_size=size,
            function_count=count,
        )
