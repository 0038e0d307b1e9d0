"""Function settings lambdad stores and reports without acting on yet: FunctionRecursionConfig (per
function; ``Terminate`` unless set) and RuntimeManagementConfig (per ``$LATEST`` or published version;
``Auto`` unless set). lambdad runs each runtime on the interpreter it has, whatever the mode says."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection

from lambdad.errors import InvalidParameterValueException, ResourceNotFoundException
from lambdad.models import LATEST, Scope, is_version_number
from lambdad.services.resolution import resolve
from lambdad.store import Database
from lambdad.store import function_configs as config_records
from lambdad.store import functions as records

DEFAULT_RECURSIVE_LOOP = "Terminate"
DEFAULT_UPDATE_RUNTIME_ON = "Auto"
MANUAL = "Manual"
_RUNTIME_ARN_REGION = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):")


@dataclass(frozen=True)
class RuntimeManagement:
    """A RuntimeManagementConfig and the ARN of the function (or version) it belongs to."""

    function_arn: str
    update_runtime_on: str
    runtime_version_arn: str | None = None


class FunctionSettingsService:
    """Recursion and runtime management configs."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def get_recursion(self, scope: Scope, function_name: str) -> str:
        """GetFunctionRecursionConfig's RecursiveLoop."""
        name, _ = resolve(scope, function_name)
        with self._database.read() as connection:
            _check_function(connection, scope, name)
            value = config_records.get_recursive_loop(connection, scope, name)
        return value or DEFAULT_RECURSIVE_LOOP

    def put_recursion(self, scope: Scope, function_name: str, recursive_loop: str) -> str:
        """PutFunctionRecursionConfig (``Allow`` or ``Terminate``, which the model already checked)."""
        name, _ = resolve(scope, function_name)
        with self._database.write() as connection:
            _check_function(connection, scope, name)
            config_records.set_recursive_loop(connection, scope, name, recursive_loop)
        return recursive_loop

    def get_runtime_management(
        self, scope: Scope, function_name: str, qualifier: str | None = None
    ) -> RuntimeManagement:
        """GetRuntimeManagementConfig (RuntimeVersionArn only in Manual mode, as AWS answers)."""
        name, qualifier = _version(scope, function_name, qualifier)
        with self._database.read() as connection:
            _check_version(connection, scope, name, qualifier)
            stored = config_records.get_runtime_management(connection, scope, name, qualifier or LATEST)
        update_on, arn = stored or (DEFAULT_UPDATE_RUNTIME_ON, None)
        return RuntimeManagement(
            scope.function_arn(name, qualifier), update_on, arn if update_on == MANUAL else None
        )

    def put_runtime_management(
        self,
        scope: Scope,
        function_name: str,
        update_runtime_on: str,
        runtime_version_arn: str | None = None,
        qualifier: str | None = None,
    ) -> RuntimeManagement:
        """PutRuntimeManagementConfig: Manual needs a RuntimeVersionArn (of this region); the other
        modes take none."""
        name, qualifier = _version(scope, function_name, qualifier)
        if update_runtime_on == MANUAL and not runtime_version_arn:
            raise InvalidParameterValueException(
                "RuntimeVersionArn must be specified when UpdateRuntimeOn is set to Manual."
            )
        if update_runtime_on != MANUAL and runtime_version_arn:
            raise InvalidParameterValueException(
                "RuntimeVersionArn can only be specified when UpdateRuntimeOn is set to Manual."
            )
        if runtime_version_arn:
            region = _RUNTIME_ARN_REGION.match(runtime_version_arn)
            if region is None or region[1] != scope.region:
                raise InvalidParameterValueException(
                    f"The runtime version ARN {runtime_version_arn} is invalid for this region."
                )
        with self._database.write() as connection:
            _check_version(connection, scope, name, qualifier)
            config_records.set_runtime_management(
                connection, scope, name, qualifier or LATEST, update_runtime_on, runtime_version_arn
            )
        return RuntimeManagement(scope.function_arn(name, qualifier), update_runtime_on, runtime_version_arn)


def _version(scope: Scope, function_name: str, qualifier: str | None) -> tuple[str, str | None]:
    name, qualifier = resolve(scope, function_name, qualifier)
    if qualifier is not None and qualifier != LATEST and not is_version_number(qualifier):
        raise InvalidParameterValueException(
            "The runtime management configuration applies to $LATEST or a published version, not an alias."
        )
    return name, qualifier


def _check_function(connection: Connection, scope: Scope, name: str) -> None:
    if not records.function_exists(connection, scope, name):
        raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")


def _check_version(connection: Connection, scope: Scope, name: str, qualifier: str | None) -> None:
    if records.get_version(connection, scope, name, qualifier or LATEST) is None:
        exists = records.function_exists(connection, scope, name)
        raise ResourceNotFoundException(
            f"Function not found: {scope.function_arn(name, qualifier if exists else None)}"
        )
