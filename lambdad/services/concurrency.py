"""Reserved concurrency (PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency)."""

from __future__ import annotations

from sqlalchemy import Connection

from lambdad.errors import InvalidParameterValueException, ResourceNotFoundException
from lambdad.models import LATEST, Scope
from lambdad.services.changes import CONCURRENCY, FunctionChanges
from lambdad.services.resolution import resolve
from lambdad.store import Database
from lambdad.store import functions as records

_QUALIFIED = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support this "
    "operation. Please specify either a function name or an unqualified function ARN."
)


def minimum_unreserved(account_limit: int) -> int:
    """What must stay unreserved: AWS keeps 100 of its default 1,000; smaller limits keep a tenth."""
    return min(100, account_limit // 10)


class ConcurrencyService:
    """Reservations out of the account's concurrency limit."""

    def __init__(self, database: Database, changes: FunctionChanges, account_limit: int) -> None:
        self._database = database
        self._changes = changes
        self.account_limit = account_limit

    def get(self, scope: Scope, function_name: str) -> int | None:
        """The function's reservation, or None."""
        name = self._function(scope, function_name)
        with self._database.read() as connection:
            self._check_exists(connection, scope, name)
            return records.get_reserved_concurrency(connection, scope, name)

    def put(self, scope: Scope, function_name: str, reserved: int) -> int:
        """Reserve ``reserved`` executions for the function (0 throttles every invocation)."""
        name = self._function(scope, function_name)
        with self._database.write() as connection:
            self._check_exists(connection, scope, name)
            others = records.total_reserved_concurrency(connection, scope, excluding=name)
            minimum = minimum_unreserved(self.account_limit)
            if self.account_limit - others - reserved < minimum:
                raise InvalidParameterValueException(
                    "Specified ReservedConcurrentExecutions for function decreases account's "
                    f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
                )
            records.set_reserved_concurrency(connection, scope, name, reserved)
        self._changes.notify(scope, name, CONCURRENCY)
        return reserved

    def delete(self, scope: Scope, function_name: str) -> None:
        """Remove the reservation: the function shares the unreserved pool again."""
        name = self._function(scope, function_name)
        with self._database.write() as connection:
            self._check_exists(connection, scope, name)
            records.set_reserved_concurrency(connection, scope, name, None)
        self._changes.notify(scope, name, CONCURRENCY)

    def unreserved(self, scope: Scope) -> int:
        """What the functions without a reservation share."""
        with self._database.read() as connection:
            return self.account_limit - records.total_reserved_concurrency(connection, scope)

    def _function(self, scope: Scope, function_name: str) -> str:
        name, qualifier = resolve(scope, function_name)
        if qualifier is not None:
            raise InvalidParameterValueException(_QUALIFIED)
        return name

    def _check_exists(self, connection: Connection, scope: Scope, name: str) -> None:
        if not records.function_exists(connection, scope, name):
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name, LATEST)}")
