"""What the records name as code in use (the reclaimer's and the storage limit's view), on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from lambdad.models import CodePackage, FunctionLayer, Scope
from lambdad.store import Database
from lambdad.store import functions as records
from lambdad.store import layers as layer_records
from lambdad.store.layers import LayerVersion
from tests.store.test_database import REGION, SCOPE, version

OWN, KEPT, PUBLISHED = "aa" * 32, "bb" * 32, "cc" * 32


def test_function_code_kept_layers_and_layer_versions_are_in_use_once_each(database: Database) -> None:
    kept = FunctionLayer(f"arn:aws:lambda:{REGION}:000000000000:layer:gone:1", CodePackage(KEPT, 5, 50))
    with database.write() as connection:
        for name in ("f", "g"):  # two functions, one package: counted once
            latest = version(name, code=CodePackage(OWN, 10, 100, 8202), layers=(kept,))
            records.insert_function(connection, SCOPE, latest, datetime.now(UTC))
        records.insert_function(
            connection,
            Scope("000000000000", "eu-west-1"),
            version("h", code=CodePackage(OWN, 10, 100, 8202)),
            datetime.now(UTC),
        )
        number = layer_records.next_version_number(connection, SCOPE, "l")
        layer = LayerVersion("l", number, CodePackage(PUBLISHED, 7, 70), datetime.now(UTC))
        layer_records.insert_version(connection, SCOPE, layer)
    with database.read() as connection:
        in_use = records.code_in_use(connection)
    # The bytes on disk where known (disk_size), else zipped plus unzipped (stored before they were).
    assert in_use.packages == {OWN: 8202, KEPT: 55, PUBLISHED: 77}
    assert in_use.layer_sets == {(KEPT,)}
    with database.write() as connection:
        for name in ("f", "g"):
            records.delete_function(connection, SCOPE, name)
        records.delete_function(connection, Scope("000000000000", "eu-west-1"), "h")
    with database.read() as connection:
        assert records.code_in_use(connection).packages == {PUBLISHED: 77}
