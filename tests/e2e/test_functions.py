"""Function management end to end: a real server driven by boto3, answers compared with AWS's."""

from __future__ import annotations

import base64
import hashlib
import io
import urllib.request
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import ROLE, create_function, make_zip

pytestmark = pytest.mark.e2e


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    error = excinfo.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


def test_create_answers_pending_then_waiter_sees_active(client: Any) -> None:
    zip_bytes = make_zip()
    created = create_function(client, "lifecycle", wait=False, MemorySize=256, Timeout=5)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["State"] == "Pending"
    assert created["StateReason"] == "The function is being created."
    assert created["StateReasonCode"] == "Creating"
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:lifecycle"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert created["CodeSize"] == len(zip_bytes)
    assert created["Version"] == "$LATEST"
    assert created["Architectures"] == ["x86_64"]
    assert created["EphemeralStorage"] == {"Size": 512}
    assert created["PackageType"] == "Zip"
    assert created["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/lifecycle"}
    client.get_waiter("function_exists").wait(FunctionName="lifecycle", WaiterConfig={"Delay": 0.1})
    client.get_waiter("function_active_v2").wait(FunctionName="lifecycle", WaiterConfig={"Delay": 0.1})
    active = client.get_function(FunctionName="lifecycle")["Configuration"]
    assert active["State"] == "Active"
    assert active["LastUpdateStatus"] == "Successful"
    assert "StateReason" not in active
    assert active["RevisionId"] != created["RevisionId"]


def test_defaults_match_aws(client: Any) -> None:
    created = create_function(client, "defaults")
    config = client.get_function_configuration(FunctionName="defaults")
    assert (config["MemorySize"], config["Timeout"], config["Description"]) == (128, 3, "")
    assert config["Environment"] == {"Variables": {}}
    assert config["TracingConfig"] == {"Mode": "PassThrough"}
    assert config["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert config["RuntimeVersionConfig"]["RuntimeVersionArn"].startswith(
        "arn:aws:lambda:us-east-1::runtime:"
    )
    assert config["CodeSha256"] == created["CodeSha256"]


def test_get_function_code_location_downloads_the_zip(client: Any) -> None:
    zip_bytes = make_zip({"handler.py": "def handler(e, c):\n    return 'download'\n"})
    create_function(client, "download", Code={"ZipFile": zip_bytes})
    answer = client.get_function(FunctionName="download")
    assert answer["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(answer["Code"]["Location"]) as response:
        assert response.read() == zip_bytes


def test_code_location_with_a_forged_signature_is_refused(client: Any) -> None:
    create_function(client, "forged")
    location = client.get_function(FunctionName="forged")["Code"]["Location"]
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(location[:-4] + "0000")
    assert excinfo.value.code == 403


def test_names_partial_arns_and_full_arns_find_the_same_function(client: Any) -> None:
    create_function(client, "named")
    for reference in (
        "named",
        "000000000000:function:named",
        "arn:aws:lambda:us-east-1:000000000000:function:named",
        "arn:aws:lambda:us-east-1:000000000000:function:named:$LATEST",
    ):
        assert client.get_function_configuration(FunctionName=reference)["FunctionName"] == "named"


def test_functions_live_in_the_region_of_the_request(server: Any) -> None:
    east, west = server.client("us-east-1"), server.client("eu-west-1")
    created = create_function(west, "regional")
    assert created["FunctionArn"] == "arn:aws:lambda:eu-west-1:000000000000:function:regional"
    with pytest.raises(east.exceptions.ResourceNotFoundException):
        east.get_function(FunctionName="regional")


def test_list_functions_paginates_with_marker_and_max_items(client: Any) -> None:
    names = [f"page-{i:02d}" for i in range(7)]
    for name in names:
        create_function(client, name, wait=False)
    seen: list[str] = []
    marker = None
    while True:
        kwargs = {"MaxItems": 3, **({"Marker": marker} if marker else {})}
        page = client.list_functions(**kwargs)
        assert len(page["Functions"]) <= 3
        seen += [f["FunctionName"] for f in page["Functions"] if f["FunctionName"].startswith("page-")]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert seen == names
    paginated = [
        f["FunctionName"]
        for p in client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2})
        for f in p["Functions"]
    ]
    assert [n for n in paginated if n.startswith("page-")] == names
    all_versions = client.list_functions(FunctionVersion="ALL")["Functions"]
    assert {f["Version"] for f in all_versions} == {"$LATEST"}


def test_update_configuration_goes_in_progress_then_successful(client: Any) -> None:
    create_function(client, "update-config")
    updated = client.update_function_configuration(
        FunctionName="update-config",
        MemorySize=512,
        Timeout=10,
        Description="Changed-Description",
        Runtime="python3.11",
        Environment={"Variables": {"ENV_A": "a"}},
        EphemeralStorage={"Size": 1024},
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["LastUpdateStatusReasonCode"] == "Creating"
    client.get_waiter("function_updated_v2").wait(FunctionName="update-config", WaiterConfig={"Delay": 0.1})
    config = client.get_function_configuration(FunctionName="update-config")
    assert config["LastUpdateStatus"] == "Successful"
    assert (config["MemorySize"], config["Timeout"], config["Runtime"]) == (512, 10, "python3.11")
    assert config["Environment"] == {"Variables": {"ENV_A": "a"}}
    assert config["EphemeralStorage"] == {"Size": 1024}
    assert config["Description"] == "Changed-Description"


def test_update_code_changes_sha_and_revision(client: Any) -> None:
    before = create_function(client, "update-code")
    new_zip = make_zip({"handler.py": "def handler(e, c):\n    return 2\n"})
    answer = client.update_function_code(FunctionName="update-code", ZipFile=new_zip)
    assert answer["LastUpdateStatus"] == "InProgress"
    assert answer["CodeSha256"] == base64.b64encode(hashlib.sha256(new_zip).digest()).decode()
    assert answer["CodeSha256"] != before["CodeSha256"]
    client.get_waiter("function_updated_v2").wait(FunctionName="update-code", WaiterConfig={"Delay": 0.1})
    location = client.get_function(FunctionName="update-code")["Code"]["Location"]
    with urllib.request.urlopen(location) as response:
        assert response.read() == new_zip


def test_update_code_dry_run_changes_nothing(client: Any) -> None:
    before = create_function(client, "dry-run")
    revision = client.get_function_configuration(FunctionName="dry-run")["RevisionId"]
    answer = client.update_function_code(FunctionName="dry-run", ZipFile=make_zip({"x.py": "x"}), DryRun=True)
    assert answer["CodeSha256"] != before["CodeSha256"]
    after = client.get_function_configuration(FunctionName="dry-run")
    assert (after["CodeSha256"], after["RevisionId"]) == (before["CodeSha256"], revision)


def test_revision_id_precondition_is_enforced(client: Any) -> None:
    create_function(client, "revision")
    current = client.get_function_configuration(FunctionName="revision")["RevisionId"]
    with pytest.raises(client.exceptions.PreconditionFailedException) as excinfo:
        client.update_function_configuration(FunctionName="revision", Timeout=9, RevisionId="stale")
    assert error_of(excinfo)[2] == 412
    with pytest.raises(client.exceptions.PreconditionFailedException):
        client.update_function_code(FunctionName="revision", ZipFile=make_zip(), RevisionId="stale")
    answer = client.update_function_configuration(FunctionName="revision", Timeout=9, RevisionId=current)
    assert answer["RevisionId"] != current


def test_update_while_in_progress_conflicts(client: Any) -> None:
    create_function(client, "busy")
    client.update_function_configuration(FunctionName="busy", Timeout=7)
    try:
        client.update_function_configuration(FunctionName="busy", Timeout=8)
    except client.exceptions.ResourceConflictException as error:
        assert "An update is in progress for resource" in str(error)
    # Either the second update raced the first to Successful, or it conflicted; both are AWS's behaviour.
    client.get_waiter("function_updated_v2").wait(FunctionName="busy", WaiterConfig={"Delay": 0.1})


def test_delete_function_answers_204_and_forgets_it(client: Any) -> None:
    create_function(client, "deleted", Tags={"team": "a"})
    answer = client.delete_function(FunctionName="deleted")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.get_function(FunctionName="deleted")
    assert error_of(excinfo) == (
        "ResourceNotFoundException",
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:deleted",
        404,
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_function(FunctionName="deleted")
    create_function(client, "deleted")
    assert client.list_tags(Resource="arn:aws:lambda:us-east-1:000000000000:function:deleted")["Tags"] == {}


def test_deleting_latest_alone_is_refused(client: Any) -> None:
    create_function(client, "keep-latest")
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.delete_function(FunctionName="keep-latest", Qualifier="$LATEST")


def test_account_settings_count_functions_and_code(fresh_server: Any) -> None:
    client = fresh_server.client()
    zip_bytes = make_zip()
    create_function(client, "counted-1", wait=False)
    create_function(client, "counted-2", wait=False)
    settings = client.get_account_settings()
    # What lambdad's code-storage limit counts: the one package both use, its zip and its one small
    # file unpacked (a 4 KiB block).
    assert len(zipfile.ZipFile(io.BytesIO(zip_bytes)).infolist()) == 1
    assert settings["AccountUsage"] == {"TotalCodeSize": len(zip_bytes) + 4096, "FunctionCount": 2}
    limit = settings["AccountLimit"]
    assert limit["CodeSizeZipped"] == 52428800
    assert limit["CodeSizeUnzipped"] == 262144000
    assert limit["ConcurrentExecutions"] == 1000
    assert limit["TotalCodeSize"] == 80530636800


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        (
            {"MemorySize": 100},
            "ValidationException",
            "1 validation error detected: Value '100' at 'memorySize' failed to satisfy constraint: "
            "Member must have value greater than or equal to 128",
        ),
        (
            {"MemorySize": 10241},
            "ValidationException",
            "1 validation error detected: Value '10241' at 'memorySize' failed to satisfy constraint: "
            "Member must have value less than or equal to 10240",
        ),
        (
            {"Timeout": 0},
            "ValidationException",
            "1 validation error detected: Value '0' at 'timeout' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1",
        ),
        (
            {"Role": "r1"},
            "ValidationException",
            "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: "
            "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        ),
        (
            {"Architectures": ["x86_64", "arm64"]},
            "ValidationException",
            "1 validation error detected: Value '[x86_64, arm64]' at 'architectures' failed to satisfy "
            "constraint: Member must have length less than or equal to 1",
        ),
        (
            {"Architectures": ["X86_64"]},
            "ValidationException",
            "1 validation error detected: Value '[X86_64]' at 'architectures' failed to satisfy constraint: "
            "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], "
            "Member must not be null]",
        ),
        (
            {"Handler": "has space"},
            "ValidationException",
            "1 validation error detected: Value 'has space' at 'handler' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [^\\s]+",
        ),
        (
            {"Code": {"ZipFile": b"this is not a zip"}},
            "InvalidParameterValueException",
            "Could not unzip uploaded file. Please check your file, then try to upload again.",
        ),
        (
            {"Runtime": "python3.7"},
            "InvalidParameterValueException",
            "The runtime parameter of python3.7 is no longer supported for creating or updating AWS Lambda "
            "functions. We recommend you use a supported runtime while creating or updating functions.",
        ),
        ({"Code": {"S3Bucket": "bucket", "S3Key": "key.zip"}}, "InvalidParameterValueException", None),
        ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, "InvalidParameterValueException", None),
        ({"Environment": {"Variables": {"BIG": "x" * 4100}}}, "InvalidParameterValueException", None),
        (
            {"Runtime": None},
            "InvalidParameterValueException",
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        ),
    ],
    ids=lambda value: str(value)[:40],
)
def test_bad_create_gets_aws_error_and_stores_nothing(
    unvalidated_client: Any, overrides: dict[str, Any], code: str, message: str | None
) -> None:
    client = unvalidated_client
    name = "rejected-" + hashlib.md5(repr(overrides).encode()).hexdigest()[:8]
    params = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "handler.handler",
        "Code": {"ZipFile": make_zip()},
        **overrides,
    }
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(ClientError) as excinfo:
        client.create_function(**params)
    got_code, got_message, status = error_of(excinfo)
    assert (got_code, status) == (code, 400)
    if message is not None:
        assert got_message == message
    assert excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName=name)


def test_unknown_runtime_lists_aws_runtimes(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        create_function(client, "bad-runtime", Runtime="PYTHON3.9")
    assert error_of(excinfo)[1].startswith(
        "Value PYTHON3.9 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: "
        "[nodejs20.x, python3.14, provided.al2023,"
    )


def test_duplicate_create_conflicts(client: Any) -> None:
    create_function(client, "twice")
    with pytest.raises(client.exceptions.ResourceConflictException) as excinfo:
        create_function(client, "twice")
    assert error_of(excinfo) == ("ResourceConflictException", "Function already exist: twice", 409)


def test_invalid_function_names_get_validation_errors(unvalidated_client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        unvalidated_client.get_function(FunctionName="my-function!")
    code, message, _ = error_of(excinfo)
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value 'my-function!' at 'functionName'")


def test_qualifier_in_name_and_parameter_must_agree(client: Any) -> None:
    create_function(client, "qualified")
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        client.get_function(
            FunctionName="arn:aws:lambda:us-east-1:000000000000:function:qualified:$LATEST", Qualifier="1"
        )
    assert (
        error_of(excinfo)[1]
        == "The derived qualifier from the function name does not match the specified qualifier."
    )


def test_a_marker_lambdad_did_not_make_is_refused(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidParameterValueException, match=r"Invalid Marker value\."):
        client.list_functions(Marker="not-a-marker")
