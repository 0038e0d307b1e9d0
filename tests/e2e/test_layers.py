"""Layers end to end: PublishLayerVersion and friends, layer version policies, functions using layers
(merged in order into /opt at run time), AWS's limits, and layers surviving a restart; compared with
AWS's recorded answers where they exist."""

from __future__ import annotations

import io
import json
import shutil
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.invoke_support import (
    deploy,
    deploy_python,
    eventually,
    executable_zip,
    health,
    invoke,
    server_fixture,
    start_server,
    unique,
    wait_updated,
)
from tests.e2e.test_invoke_runtimes import BOOTSTRAP
from tests.recordings import differences, recorded
from tests.support import ROLE, Server, create_function, make_zip

pytestmark = pytest.mark.e2e
API = "test_lambda_api.snapshot.json"
LAYERS = "TestLambdaLayer::"

# Spares on: a function with layers must not be started from one (a spare has no /opt).
server = server_fixture("--spares", "1")


@pytest.fixture
def client(server: Server) -> Any:
    return server.client()


def expected(test: str, key: str) -> Any:
    return recorded(API, LAYERS + test, key)


def error_differences(error: Any, wanted: dict[str, Any]) -> list[str]:
    answer = error.value.response
    found = differences(answer["Error"], wanted["Error"], "Error")
    status = answer["ResponseMetadata"]["HTTPStatusCode"]
    if status != wanted["ResponseMetadata"]["HTTPStatusCode"]:
        found.append(f"status {status} != {wanted['ResponseMetadata']['HTTPStatusCode']}")
    return found


def layer_zip(files: dict[str, str | bytes], executables: frozenset[str] = frozenset()) -> bytes:
    return executable_zip(
        {k: v if isinstance(v, str) else v.decode() for k, v in files.items()}, set(executables)
    )


def publish(
    client: Any, name: str, files: dict[str, str | bytes] | None = None, **params: Any
) -> dict[str, Any]:
    content = layer_zip(files or {"python/placeholder.py": "VALUE = 1\n"})
    return dict(client.publish_layer_version(LayerName=name, Content={"ZipFile": content}, **params))


# --- the layer API ----------------------------------------------------------------------------------


def test_layer_lifecycle_matches_aws(client: Any) -> None:
    name = unique("layer")
    params: dict[str, Any] = {
        "CompatibleRuntimes": ["python3.12"],
        "CompatibleArchitectures": ["x86_64"],
        "Description": "a layer",
        "LicenseInfo": "MIT",
    }
    first = publish(client, name, **params)
    assert differences(first, expected("test_layer_lifecycle", "publish_result")) == []
    assert first["LayerVersionArn"] == f"{first['LayerArn']}:1"
    second = publish(client, name, **params)
    assert differences(second, expected("test_layer_lifecycle", "publish_result_2")) == []
    assert second["Version"] == 2 and second["Content"]["CodeSha256"] == first["Content"]["CodeSha256"]

    got = client.get_layer_version(LayerName=name, VersionNumber=1)
    assert differences(got, expected("test_layer_lifecycle", "get_layer_ver_result")) == []
    by_arn = client.get_layer_version_by_arn(Arn=first["LayerVersionArn"])
    assert differences(by_arn, expected("test_layer_lifecycle", "get_layer_by_arn_version")) == []
    with urllib.request.urlopen(got["Content"]["Location"], timeout=10) as download:
        assert len(download.read()) == got["Content"]["CodeSize"]
    by_layer_arn = client.get_layer_version(LayerName=first["LayerArn"], VersionNumber=2)
    assert by_layer_arn["LayerVersionArn"] == second["LayerVersionArn"]

    listed = client.list_layer_versions(LayerName=name)
    assert differences(listed, expected("test_layer_lifecycle", "list_layer_versions_predelete")) == []
    layers = [layer for layer in client.list_layers()["Layers"] if layer["LayerName"] == name]
    assert len(layers) == 1 and layers[0]["LayerArn"] == first["LayerArn"]
    assert layers[0]["LatestMatchingVersion"]["Version"] == 2
    assert not [
        layer
        for layer in client.list_layers(CompatibleRuntime="nodejs22.x")["Layers"]
        if layer["LayerName"] == name
    ]
    assert [
        v["Version"]
        for v in client.list_layer_versions(LayerName=name, CompatibleArchitecture="x86_64")["LayerVersions"]
    ] == [2, 1]
    assert client.list_layer_versions(LayerName=name, CompatibleArchitecture="arm64")["LayerVersions"] == []

    function = unique("fn-layered")
    create_function(client, function, Timeout=30)
    updated = client.update_function_configuration(FunctionName=function, Layers=[first["LayerVersionArn"]])
    wanted = expected("test_layer_lifecycle", "update_fn_config")["Layers"]
    assert differences(updated["Layers"], wanted) == []
    assert updated["Layers"][0]["CodeSize"] == first["Content"]["CodeSize"]
    wait_updated(client, function)

    assert (
        client.delete_layer_version(LayerName=name, VersionNumber=1)["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    # The function keeps the layer version it uses, as on AWS.
    config = client.get_function_configuration(FunctionName=function)
    assert (
        differences(config["Layers"], expected("test_layer_lifecycle", "get_fn_config_postdelete")["Layers"])
        == []
    )
    client.delete_layer_version(LayerName=name, VersionNumber=2)
    after = client.list_layer_versions(LayerName=name)
    assert differences(after, expected("test_layer_lifecycle", "list_layer_versions_postdelete")) == []
    # Numbers are never reused.
    third = publish(client, name, **params)
    assert differences(third, expected("test_layer_lifecycle", "publish_result_3")) == []

    cleared = client.update_function_configuration(FunctionName=function, Layers=[])
    assert "Layers" not in cleared


def test_publish_without_compatibilities_matches_aws(client: Any) -> None:
    answer = publish(client, unique("layer-empty"), CompatibleRuntimes=[], CompatibleArchitectures=[])
    assert differences(answer, expected("test_layer_exceptions", "publish_empty_result")) == []
    bare = publish(client, unique("layer-bare"))
    assert differences(bare, expected("test_layer_s3_content", "publish_layer_result")) == []


def test_layer_errors_match_aws(client: Any) -> None:
    name = unique("layer-errors")
    first = publish(client, name, CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["x86_64"])
    test = "test_layer_exceptions"

    with pytest.raises(client.exceptions.ClientError) as error:
        client.list_layers(CompatibleRuntime="runtimedoesnotexist")
    assert error_differences(error, expected(test, "list_layers_exc_compatibleruntime_invalid")) == []
    with pytest.raises(client.exceptions.ClientError) as error:
        client.list_layers(CompatibleArchitecture="archdoesnotexist")
    assert error_differences(error, expected(test, "list_layers_exc_compatiblearchitecture_invalid")) == []
    missing = client.list_layer_versions(LayerName=unique("no-such-layer"))
    assert differences(missing, expected(test, "list_nonexistent_layer")) == []

    with pytest.raises(client.exceptions.ClientError) as error:
        client.get_layer_version(LayerName=unique("no-such-layer"), VersionNumber=1)
    assert error_differences(error, expected(test, "get_layer_version_exc_layer_doesnotexist")) == []
    for number, key in ((-1, "negative"), (0, "zero")):
        with pytest.raises(client.exceptions.ClientError) as error:
            client.get_layer_version(LayerName=name, VersionNumber=number)
        assert (
            error_differences(
                error, expected(test, f"get_layer_version_exc_layer_version_doesnotexist_{key}")
            )
            == []
        )
    with pytest.raises(client.exceptions.ClientError) as error:
        client.get_layer_version(LayerName=name, VersionNumber=2)
    assert (
        error_differences(error, expected(test, "get_layer_version_exc_layer_version_doesnotexist_2")) == []
    )

    with pytest.raises(client.exceptions.ClientError) as error:
        client.get_layer_version_by_arn(Arn=first["LayerArn"])
    assert error_differences(error, expected(test, "get_layer_version_by_arn_exc_invalidarn")) == []
    with pytest.raises(client.exceptions.ClientError) as error:
        client.get_layer_version_by_arn(Arn=f"{first['LayerArn']}:2")
    assert error_differences(error, expected(test, "get_layer_version_by_arn_exc_nonexistentversion")) == []

    gone = client.delete_layer_version(LayerName=unique("no-such-layer"), VersionNumber=1)
    assert differences(gone, expected(test, "delete_nonexistent_response")) == []
    gone = client.delete_layer_version(LayerName=name, VersionNumber=7)
    assert differences(gone, expected(test, "delete_nonexistent_version_response")) == []
    with pytest.raises(client.exceptions.ClientError) as error:
        client.delete_layer_version(LayerName=name, VersionNumber=0)
    assert (
        error_differences(error, expected(test, "delete_layer_version_exc_layerversion_invalid_version"))
        == []
    )

    with pytest.raises(client.exceptions.ClientError) as error:
        publish(client, name, CompatibleRuntimes=["invalidruntime"])
    # AWS's wording for one unknown runtime (its recording has two errors, runtimes and architectures).
    recorded_message = expected(test, "publish_layer_version_exc_invalid_runtime_arch")["Error"]["Message"]
    runtimes_part = recorded_message.split(": ", 1)[1].split("; ")[0]
    assert error.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": f"1 validation error detected: {runtimes_part}",
    }
    with pytest.raises(client.exceptions.ClientError) as error:
        publish(client, name, CompatibleArchitectures=["invalidarch"])
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert (
        "Value '[invalidarch]' at 'compatibleArchitectures' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], "
        "Member must not be null]"
    ) in error.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.publish_layer_version(LayerName=name, Content={"ZipFile": b"not a zip"})


def test_layer_policy_lifecycle_matches_aws(client: Any) -> None:
    name = unique("layer-policy")
    publish(client, name, CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["x86_64"])
    test = "test_layer_policy_lifecycle"
    grant = {"Action": "lambda:GetLayerVersion", "Principal": "*"}

    added = client.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="s1", **grant)
    wanted = expected(test, "add_policy_s1")
    assert differences(json.loads(added["Statement"]), wanted["Statement"]) == []
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    policy = client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert (
        differences(json.loads(policy["Policy"]), expected(test, "get_layer_version_policy")["Policy"]) == []
    )
    assert policy["RevisionId"] == added["RevisionId"]

    second = client.add_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="s2", RevisionId=added["RevisionId"], **grant
    )
    policy = client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    wanted = expected(test, "get_layer_version_policy_postadd2")["Policy"]
    assert differences(json.loads(policy["Policy"]), wanted) == []
    assert policy["RevisionId"] == second["RevisionId"] != added["RevisionId"]

    removed = client.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="s2")
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    policy = client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    wanted = expected(test, "get_layer_version_policy_postdeletes2")["Policy"]
    assert differences(json.loads(policy["Policy"]), wanted) == []
    assert policy["RevisionId"] != second["RevisionId"]


def test_layer_policy_errors_match_aws(client: Any, server: Server) -> None:
    name = unique("layer-policy-errors")
    publish(client, name, CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["x86_64"])
    test = "test_layer_policy_exceptions"
    grant = {"Action": "lambda:GetLayerVersion", "Principal": "*"}

    with pytest.raises(client.exceptions.ClientError) as error:
        client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert error_differences(error, expected(test, "layer_permission_nopolicy_get")) == []
    added = client.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="s1", **grant)
    assert (
        differences(
            json.loads(added["Statement"]), expected(test, "add_layer_permission_result")["Statement"]
        )
        == []
    )

    with pytest.raises(client.exceptions.ClientError) as error:
        server.client(parameter_validation=False).add_layer_version_permission(
            LayerName=name, VersionNumber=1, StatementId="s2", Action="*", Principal="*"
        )
    assert error_differences(error, expected(test, "layer_permission_action_invalid")) == []
    with pytest.raises(client.exceptions.ClientError) as error:
        client.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="s1", **grant)
    assert error_differences(error, expected(test, "layer_permission_duplicate_statement")) == []
    with pytest.raises(client.exceptions.ClientError) as error:
        client.add_layer_version_permission(
            LayerName=name, VersionNumber=1, StatementId="s2", RevisionId="wrong", **grant
        )
    assert error_differences(error, expected(test, "layer_permission_wrong_revision")) == []

    for operation, extra in (
        (client.add_layer_version_permission, {"StatementId": "s3", **grant}),
        (client.get_layer_version_policy, {}),
        (client.remove_layer_version_permission, {"StatementId": "s1"}),
    ):
        suffix = operation.__name__.split("_")[0]
        suffix = {"add": "add", "get": "get", "remove": "remove"}[suffix]
        with pytest.raises(client.exceptions.ClientError) as error:
            operation(LayerName=f"{name}-doesnotexist", VersionNumber=1, **extra)
        wanted = expected(test, f"layer_permission_layername_doesnotexist_{suffix}")
        assert error_differences(error, wanted) == []
        with pytest.raises(client.exceptions.ClientError) as error:
            operation(LayerName=name, VersionNumber=2, **extra)
        wanted = expected(test, f"layer_permission_layerversion_doesnotexist_{suffix}")
        assert error_differences(error, wanted) == []

    with pytest.raises(client.exceptions.ClientError) as error:
        client.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="doesnotexist")
    assert error_differences(error, expected(test, "layer_permission_statementid_doesnotexist_remove")) == []
    with pytest.raises(client.exceptions.ClientError) as error:
        client.remove_layer_version_permission(
            LayerName=name, VersionNumber=1, StatementId="s1", RevisionId="wrong"
        )
    assert error_differences(error, expected(test, "layer_permission_wrong_revision_remove")) == []


# --- functions with layers ----------------------------------------------------------------------------


def test_function_layer_errors_match_aws(client: Any, server: Server) -> None:
    name = unique("layer-fn-errors")
    arns = [publish(client, name)["LayerVersionArn"] for _ in range(3)]
    test = "test_layer_function_exceptions"
    function = unique("fn-layer-errors")
    create_function(client, function)

    cases = [
        ([arns[0], arns[1]], "two_layer_versions_single_function_exc"),
        ([arns[0], arns[1], arns[2]], "three_layer_versions_single_function_exc"),
        ([arns[0], arns[0]], "two_identical_layer_versions_single_function_exc"),
        ([arns[0].replace(f":layer:{name}:", ":layer:doesnotexist:")], "add_nonexistent_layer_exc"),
        ([arns[0].rsplit(":", 1)[0] + ":9"], "add_nonexistent_layer_version_exc"),
        ([arns[0].rsplit(":", 1)[0]], "add_layer_arn_without_version_exc"),
    ]
    for layers, key in cases:
        with pytest.raises(client.exceptions.ClientError) as error:
            client.update_function_configuration(FunctionName=function, Layers=layers)
        assert error_differences(error, expected(test, key)) == [], key

    with pytest.raises(client.exceptions.ClientError) as error:
        create_function(
            client, unique("fn-other-region"), wait=False, Layers=[arns[0].replace("us-east-1", "eu-west-1")]
        )
    assert error_differences(error, expected(test, "create_function_with_layer_in_different_region")) == []

    six = [publish(client, unique("layer-six"))["LayerVersionArn"] for _ in range(6)]
    with pytest.raises(client.exceptions.ClientError) as error:
        create_function(client, unique("fn-six"), wait=False, Layers=six)
    wanted = expected("test_layer_function_quota_exception", "create_function_with_six_layers")
    assert error_differences(error, wanted) == []
    created = create_function(client, unique("fn-five"), wait=False, Layers=six[:5])
    assert [layer["Arn"] for layer in created["Layers"]] == six[:5]


def test_code_and_layers_together_stay_within_250_mb(client: Any) -> None:
    big = 140 * 1024 * 1024  # two of these pass 262,144,000 bytes; each zips to a few hundred KB
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("lib/blob.bin", b"\0" * big)
    content = buffer.getvalue()
    arns = [
        client.publish_layer_version(LayerName=unique("layer-big"), Content={"ZipFile": content})[
            "LayerVersionArn"
        ]
        for _ in range(2)
    ]
    function = unique("fn-too-big")
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        create_function(client, function, wait=False, Layers=arns)
    message = error.value.response["Error"]["Message"]
    assert message.startswith(
        "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. "
        "The actual size is "
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName=function)
    create_function(client, function, Layers=arns[:1])
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.update_function_configuration(FunctionName=function, Layers=arns)


IMPORTS_FROM_LAYERS = """
import os
import layer_module
import shared

def handler(event, context):
    return {
        "module": layer_module.VALUE,
        "shared": shared.VALUE,
        "opt": sorted(os.listdir("/opt")),
        "bin": open("/opt/bin/tool").read().strip(),
        "path": os.environ["PATH"].split(":"),
        "ld": os.environ.get("LD_LIBRARY_PATH", "").split(":"),
    }
"""


def test_a_python_function_imports_from_its_layers_merged_in_order(server: Server, client: Any) -> None:
    first = publish(
        client,
        unique("layer-first"),
        {
            "python/layer_module.py": "VALUE = 'from the first layer'\n",
            "python/shared.py": "VALUE = 'first'\n",
            "bin/tool": "first tool\n",
        },
    )
    second = publish(
        client,
        unique("layer-second"),
        {"python/shared.py": "VALUE = 'second'\n", "bin/tool": "second tool\n", "lib/libx.so": "x"},
    )
    # A primer without layers fills the spare pool; the function with layers must not take it.
    primer = unique("primer")
    deploy_python(client, primer, "def handler(event, context):\n    return 'primed'\n")
    invoke(client, primer, {})
    eventually(lambda: health(server)["spares"] >= 1 or None, timeout=30)

    name = unique("fn-layers")
    config = deploy_python(
        client, name, IMPORTS_FROM_LAYERS, Layers=[first["LayerVersionArn"], second["LayerVersionArn"]]
    )
    assert [layer["Arn"] for layer in config["Layers"]] == [
        first["LayerVersionArn"],
        second["LayerVersionArn"],
    ]
    response, result = invoke(client, name, {})
    assert "FunctionError" not in response, result
    assert result["module"] == "from the first layer"
    assert result["shared"] == "second" and result["bin"] == "second tool", "the later layer wins"
    assert result["opt"] == ["bin", "lib", "python"]
    assert "/opt/bin" in result["path"] and "/opt/lib" in result["ld"]

    # The other order: the first layer now overrides the second's files.
    client.update_function_configuration(
        FunctionName=name, Layers=[second["LayerVersionArn"], first["LayerVersionArn"]]
    )
    wait_updated(client, name)
    response, result = invoke(client, name, {})
    assert "FunctionError" not in response, result
    assert result["shared"] == "first" and result["bin"] == "first tool"

    # Without layers the import fails: /opt is gone.
    client.update_function_configuration(FunctionName=name, Layers=[])
    wait_updated(client, name)
    response, result = invoke(client, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert "layer_module" in result["errorMessage"]


def test_a_provided_function_runs_the_bootstrap_of_its_layer(client: Any) -> None:
    layer = client.publish_layer_version(
        LayerName=unique("layer-runtime"),
        Content={"ZipFile": executable_zip({"bootstrap": BOOTSTRAP}, {"bootstrap"})},
        CompatibleRuntimes=["provided.al2023"],
    )
    name = unique("fn-provided")
    deploy(
        client,
        name,
        {"function.sh": "# the runtime comes from the layer\n"},
        Runtime="provided.al2023",
        Handler="function.handler",
        Layers=[layer["LayerVersionArn"]],
    )
    response, payload = invoke(client, name, {"x": 1})
    assert "FunctionError" not in response, payload
    assert payload["echo"] == {"x": 1} and payload["handler"] == "function.handler"


def test_layers_and_their_packages_survive_a_restart(tmp_path: Path) -> None:
    running = start_server(tmp_path)
    try:
        client = running.client()
        used = publish(client, "kept-layer", {"python/kept.py": "VALUE = 'kept'\n"})
        unused = publish(client, "unused-layer", {"python/unused.py": "VALUE = 'unused'\n"})
        name = "fn-after-restart"
        deploy_python(
            client,
            name,
            "import kept\n\ndef handler(event, context):\n    return kept.VALUE\n",
            Layers=[used["LayerVersionArn"]],
        )
        # The function keeps its layer even once the layer version is gone.
        client.delete_layer_version(LayerName="kept-layer", VersionNumber=1)
        running.stop()
        # A fresh start unpacks everything again.
        for leftover in ("tasks", "opt"):
            if (running.data_dir / leftover).exists():
                shutil.rmtree(running.data_dir / leftover)
        running.start(timeout=60)

        got = client.get_layer_version(LayerName="unused-layer", VersionNumber=1)
        assert got["Content"]["CodeSha256"] == unused["Content"]["CodeSha256"]
        with urllib.request.urlopen(got["Content"]["Location"], timeout=10) as download:
            assert len(download.read()) == unused["Content"]["CodeSize"]
        assert [layer["Arn"] for layer in client.get_function_configuration(FunctionName=name)["Layers"]] == [
            used["LayerVersionArn"]
        ]
        response, payload = invoke(client, name, {})
        assert "FunctionError" not in response, payload
        assert payload == "kept"
        assert publish(client, "kept-layer")["Version"] == 2
    finally:
        if running.process and running.process.poll() is None:
            running.stop()


def test_publishing_a_layer_needs_a_zip(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.publish_layer_version(
            LayerName=unique("layer-s3"), Content={"S3Bucket": "bucket", "S3Key": "key.zip"}
        )
    function = unique("fn-plain")
    created = create_function(client, function, Code={"ZipFile": make_zip()}, Role=ROLE)
    assert "Layers" not in created
