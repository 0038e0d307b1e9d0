"""Code signing end to end: AWS Signer's API and Lambda's code signing configs through real boto3
clients, packages signed by the real ``lambdad sign``, verified on CreateFunction and
UpdateFunctionCode under Warn and Enforce."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from lambdad import signatures
from tests.support import CREDENTIALS, Server, create_function, make_zip

RECORDINGS = Path(__file__).parent.parent / "aws-recordings" / "lambda" / "test_lambda_api.snapshot.json"
UNTRUSTED = (
    "Lambda cannot deploy the function. The function or layer might be signed using a signature that the "
    "client is not configured to accept. Check the provided signature for {name}."
)


def signer(server: Server) -> Any:
    return boto3.client(
        "signer",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        # GetRevocationStatus's endpoint has a host prefix ("data-"): keep the host as given.
        config=Config(retries={"max_attempts": 1}, inject_host_prefix=False),
        **CREDENTIALS,
    )


def sign(server: Server, tmp_path: Path, package: bytes, profile: str) -> bytes:
    """``lambdad sign --profile PROFILE IN.zip``, as a user runs it."""
    source = tmp_path / f"{uuid.uuid4().hex}.zip"
    source.write_bytes(package)
    output = source.with_name(source.stem + "-signed.zip")
    env = server.cli_env(AWS_REGION="us-east-1")
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "lambdad"),
            "sign",
            "--profile",
            profile,
            "--endpoint",
            server.endpoint,
            "--output",
            str(output),
            str(source),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return output.read_bytes()


def profile(server: Server, **extra: Any) -> dict[str, Any]:
    name = "p" + uuid.uuid4().hex[:12]
    made = signer(server).put_signing_profile(profileName=name, platformId="AWSLambda-SHA384-ECDSA", **extra)
    return {"name": name, **made}


def config(client: Any, policy: str, *version_arns: str) -> str:
    made = client.create_code_signing_config(
        AllowedPublishers={"SigningProfileVersionArns": list(version_arns)},
        CodeSigningPolicies={"UntrustedArtifactOnDeployment": policy},
    )
    return str(made["CodeSigningConfig"]["CodeSigningConfigArn"])


def code(text: str) -> bytes:
    return make_zip({"handler.py": f"def handler(event, context):\n    return {text!r}\n"})


def error_of(excinfo: pytest.ExceptionInfo[Any]) -> tuple[str, str, int]:
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_signing_profiles_through_the_signer_api(server: Server) -> None:
    client = signer(server)
    made = profile(server, signatureValidityPeriod={"value": 30, "type": "DAYS"}, tags={"team": "a"})
    name = made["name"]
    assert made["arn"] == f"arn:aws:signer:us-east-1:000000000000:/signing-profiles/{name}"
    assert made["profileVersionArn"] == f"{made['arn']}/{made['profileVersion']}"
    assert len(made["profileVersion"]) == 10 and made["profileVersion"].isalnum()
    got = client.get_signing_profile(profileName=name)
    assert got["status"] == "Active" and got["platformId"] == "AWSLambda-SHA384-ECDSA"
    assert got["signatureValidityPeriod"] == {"value": 30, "type": "DAYS"}
    assert got["tags"] == {"team": "a"}
    assert name in [p["profileName"] for p in client.list_signing_profiles()["profiles"]]
    with pytest.raises(client.exceptions.ValidationException):
        client.put_signing_profile(profileName=name, platformId="AWSLambda-SHA384-ECDSA")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_signing_profile(profileName="nosuchprofile")
    platform = client.get_signing_platform(platformId="AWSLambda-SHA384-ECDSA")
    assert platform["target"] == "AWSLambda" and platform["revocationSupported"] is True
    assert [p["platformId"] for p in client.list_signing_platforms()["platforms"]] == [
        "AWSLambda-SHA384-ECDSA"
    ]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_signing_platform(platformId="AmazonFreeRTOS-Default")
    # No S3 here: StartSigningJob says how to sign instead.
    with pytest.raises(client.exceptions.ValidationException, match="lambdad sign"):
        client.start_signing_job(
            source={"s3": {"bucketName": "b", "key": "k.zip", "version": "1"}},
            destination={"s3": {"bucketName": "b"}},
            profileName=name,
        )
    # Another account's profile is nobody else's to read or sign with.
    with pytest.raises(client.exceptions.AccessDeniedException):
        client.get_signing_profile(profileName=name, profileOwner="111111111111")
    with pytest.raises(client.exceptions.AccessDeniedException):
        client.sign_payload(
            profileName=name,
            profileOwner="111111111111",
            payload=json.dumps({"digest": {"SHA-384": "0" * 96}}).encode(),
            payloadFormat=signatures.PAYLOAD_FORMAT,
        )
    client.cancel_signing_profile(profileName=name)
    assert client.get_signing_profile(profileName=name)["status"] == "Canceled"
    assert name not in [p["profileName"] for p in client.list_signing_profiles()["profiles"]]
    assert name in [p["profileName"] for p in client.list_signing_profiles(includeCanceled=True)["profiles"]]


def test_lambdad_sign_puts_a_verifiable_signature_in_the_zip(server: Server, tmp_path: Path) -> None:
    made = profile(server)
    package = code("signed")
    signed = sign(server, tmp_path, package, made["name"])
    envelope = signatures.extract(signed)
    assert envelope is not None and signatures.extract(package) is None
    manifest = envelope.manifest
    assert manifest.profile_version_arn == made["profileVersionArn"]
    assert manifest.digest == signatures.digest(package)
    job = signer(server).describe_signing_job(jobId=manifest.job_id)
    assert job["profileName"] == made["name"] and job["status"] == "Succeeded"
    # By ARN too; an ARN's profile must exist.
    assert signatures.is_signed(sign(server, tmp_path, package, made["arn"]))


def test_code_signing_configs_as_aws_answers(server: Server, client: Any) -> None:
    recorded = json.loads(RECORDINGS.read_text())
    flow = recorded[
        "tests/aws/services/lambda_/test_lambda_api.py::TestCodeSigningConfig::test_function_code_signing_config"
    ]["recorded-content"]
    arn_of_profile = "arn:aws:signer:us-east-1:000000000000:/signing-profiles/test"
    created = client.create_code_signing_config(
        Description="Testing CodeSigning Config",
        AllowedPublishers={"SigningProfileVersionArns": [arn_of_profile]},
        CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    csc = created["CodeSigningConfig"]
    assert set(csc) == set(flow["create_code_signing_config"]["CodeSigningConfig"])
    arn = csc["CodeSigningConfigArn"]
    assert arn == f"arn:aws:lambda:us-east-1:000000000000:code-signing-config:{csc['CodeSigningConfigId']}"
    assert len(csc["CodeSigningConfigId"]) == 21 and csc["CodeSigningConfigId"].startswith("csc-")
    updated = client.update_code_signing_config(
        CodeSigningConfigArn=arn, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"}
    )["CodeSigningConfig"]
    assert updated["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    assert updated["Description"] == "Testing CodeSigning Config"
    assert client.get_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"] == updated
    name = "csc-" + uuid.uuid4().hex[:8]
    create_function(client, name, wait=False)
    assert (
        client.get_function_code_signing_config(FunctionName=name)["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
    assert "CodeSigningConfigArn" not in client.get_function_code_signing_config(FunctionName=name)
    put = client.put_function_code_signing_config(CodeSigningConfigArn=arn, FunctionName=name)
    assert (put["CodeSigningConfigArn"], put["FunctionName"]) == (arn, name)
    got = client.get_function_code_signing_config(FunctionName=name)
    assert (got["CodeSigningConfigArn"], got["FunctionName"]) == (arn, name)
    assert updated in client.list_code_signing_configs()["CodeSigningConfigs"]
    listed = client.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"]
    assert listed == [f"arn:aws:lambda:us-east-1:000000000000:function:{name}"]
    # In use: refused.
    with pytest.raises(client.exceptions.ResourceConflictException) as conflict:
        client.delete_code_signing_config(CodeSigningConfigArn=arn)
    assert error_of(conflict)[2] == 409
    deleted = client.delete_function_code_signing_config(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert (
        client.delete_function_code_signing_config(FunctionName=name)["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    assert (
        client.delete_code_signing_config(CodeSigningConfigArn=arn)["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    # Gone: AWS's words.
    with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
        client.get_code_signing_config(CodeSigningConfigArn=arn)
    assert error_of(missing) == (
        "ResourceNotFoundException",
        f"The Lambda code signing configuration {arn} can not be found.",
        404,
    )
    with pytest.raises(client.exceptions.CodeSigningConfigNotFoundException) as not_found:
        client.put_function_code_signing_config(CodeSigningConfigArn=arn, FunctionName=name)
    assert error_of(not_found) == (
        "CodeSigningConfigNotFoundException",
        "The code signing configuration cannot be found. Check that the provided configuration is not "
        f"deleted: {arn}.",
        404,
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException) as no_function:
        client.get_function_code_signing_config(FunctionName="csc-test-doesnotexist")
    assert error_of(no_function)[1] == (
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:csc-test-doesnotexist"
    )
    with pytest.raises(client.exceptions.CodeSigningConfigNotFoundException):
        create_function(client, name + "x", wait=False, CodeSigningConfigArn=arn)


def test_deleting_a_function_frees_its_config(client: Any) -> None:
    arn = config(client, "Warn", "arn:aws:signer:us-east-1:000000000000:/signing-profiles/test")
    name = "freed-" + uuid.uuid4().hex[:8]
    create_function(client, name, wait=False, CodeSigningConfigArn=arn)
    with pytest.raises(client.exceptions.ResourceConflictException):
        client.delete_code_signing_config(CodeSigningConfigArn=arn)
    client.delete_function(FunctionName=name)
    assert client.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == []
    client.delete_code_signing_config(CodeSigningConfigArn=arn)


def test_the_aws_cli_manages_code_signing_configs(server: Server) -> None:
    made = server.aws_cli(
        "create-code-signing-config",
        "--allowed-publishers",
        "SigningProfileVersionArns=arn:aws:signer:us-east-1:000000000000:/signing-profiles/cli/AbCdE12345",
        "--code-signing-policies",
        "UntrustedArtifactOnDeployment=Enforce",
    )
    arn = json.loads(made.stdout)["CodeSigningConfig"]["CodeSigningConfigArn"]
    got = json.loads(server.aws_cli("get-code-signing-config", "--code-signing-config-arn", arn).stdout)
    assert got["CodeSigningConfig"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    server.aws_cli("delete-code-signing-config", "--code-signing-config-arn", arn)
    missing = server.aws_cli("get-code-signing-config", "--code-signing-config-arn", arn, check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


def test_enforce_deploys_only_trusted_packages(server: Server, client: Any, tmp_path: Path) -> None:
    trusted, other = profile(server), profile(server)
    enforce = config(client, "Enforce", trusted["profileVersionArn"])
    good = sign(server, tmp_path, code("good"), trusted["name"])
    name = "enforce-" + uuid.uuid4().hex[:8]
    create_function(client, name, CodeSigningConfigArn=enforce, Code={"ZipFile": good})
    assert client.get_function_code_signing_config(FunctionName=name)["CodeSigningConfigArn"] == enforce
    # The signed package runs: the signature does not get in the code's way.
    answer = client.invoke(FunctionName=name, Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == "good"

    for package in (code("unsigned"), sign(server, tmp_path, code("other"), other["name"])):
        with pytest.raises(client.exceptions.CodeVerificationFailedException) as refused:
            client.update_function_code(FunctionName=name, ZipFile=package)
        assert error_of(refused) == ("CodeVerificationFailedException", UNTRUSTED.format(name=name), 400)
        with pytest.raises(client.exceptions.CodeVerificationFailedException):
            create_function(
                client, name + "-b", wait=False, CodeSigningConfigArn=enforce, Code={"ZipFile": package}
            )

    # A signature moved onto other code fails the integrity check.
    evil = code("evil")
    tampered = signatures.unsigned(evil)[:-2] + good[len(signatures.unsigned(good)) - 2 :]
    with pytest.raises(client.exceptions.InvalidCodeSignatureException) as invalid:
        client.update_function_code(FunctionName=name, ZipFile=tampered)
    assert error_of(invalid)[2] == 400
    assert json.loads(client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == "good"

    # A newly signed package deploys by UpdateFunctionCode.
    client.update_function_code(
        FunctionName=name, ZipFile=sign(server, tmp_path, code("better"), trusted["name"])
    )


def test_warn_deploys_untrusted_packages_but_never_a_broken_signature(
    server: Server, client: Any, tmp_path: Path
) -> None:
    trusted = profile(server)
    warn = config(client, "Warn", trusted["arn"])  # a profile ARN without its version allows any version
    name = "warn-" + uuid.uuid4().hex[:8]
    create_function(client, name, wait=False, CodeSigningConfigArn=warn, Code={"ZipFile": code("unsigned")})
    good = sign(server, tmp_path, code("good"), trusted["name"])
    other = "warn2-" + uuid.uuid4().hex[:8]
    create_function(client, other, wait=False, CodeSigningConfigArn=warn, Code={"ZipFile": good})
    evil = code("evil")
    tampered = signatures.unsigned(evil)[:-2] + good[len(signatures.unsigned(good)) - 2 :]
    with pytest.raises(client.exceptions.InvalidCodeSignatureException):
        create_function(
            client, name + "-t", wait=False, CodeSigningConfigArn=warn, Code={"ZipFile": tampered}
        )
    log = " ".join(server.log_path.read_text().split())  # the server's log lines are wrapped
    assert f"deploying an untrusted package for {name}: the package is not signed" in log
    assert f"deploying an untrusted package for {other}" not in log


def _refused(client: Any, name: str, package: bytes) -> None:
    with pytest.raises(client.exceptions.CodeVerificationFailedException):
        client.update_function_code(FunctionName=name, ZipFile=package)


def test_revoked_signatures_and_profiles_are_untrusted(server: Server, client: Any, tmp_path: Path) -> None:
    signer_client = signer(server)
    revoked_sig, revoked_profile, canceled = profile(server), profile(server), profile(server)
    enforce = config(
        client,
        "Enforce",
        revoked_sig["profileVersionArn"],
        revoked_profile["profileVersionArn"],
        canceled["arn"],
    )
    name = "revoke-" + uuid.uuid4().hex[:8]
    create_function(
        client,
        name,
        CodeSigningConfigArn=enforce,
        Code={"ZipFile": sign(server, tmp_path, code("v1"), revoked_sig["name"])},
    )

    # RevokeSignature: that one signature is no longer trusted; another of the same profile still is.
    package = sign(server, tmp_path, code("v2"), revoked_sig["name"])
    envelope = signatures.extract(package)
    assert envelope is not None
    signer_client.revoke_signature(jobId=envelope.manifest.job_id, reason="leaked build")
    assert signer_client.describe_signing_job(jobId=envelope.manifest.job_id)["revocationRecord"][
        "reason"
    ] == ("leaked build")
    _refused(client, name, package)
    revoked_jobs = [job["jobId"] for job in signer_client.list_signing_jobs(isRevoked=True)["jobs"]]
    assert revoked_jobs == [envelope.manifest.job_id]
    assert envelope.manifest.job_id not in [
        j["jobId"] for j in signer_client.list_signing_jobs(isRevoked=False)["jobs"]
    ]
    job_arn = f"arn:aws:signer:us-east-1:000000000000:/signing-jobs/{envelope.manifest.job_id}"
    status = signer_client.get_revocation_status(
        signatureTimestamp=envelope.manifest.signed_at,
        platformId="AWSLambda-SHA384-ECDSA",
        profileVersionArn=revoked_sig["profileVersionArn"],
        jobArn=job_arn,
        certificateHashes=["0" * 64],
    )
    assert status["revokedEntities"] == [job_arn]
    client.update_function_code(
        FunctionName=name, ZipFile=sign(server, tmp_path, code("v3"), revoked_sig["name"])
    )
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})

    # RevokeSigningProfile: signatures from the effective time on are untrusted, and it signs no more.
    package = sign(server, tmp_path, code("v4"), revoked_profile["name"])
    signer_client.revoke_signing_profile(
        profileName=revoked_profile["name"],
        profileVersion=revoked_profile["profileVersion"],
        reason="key compromised",
        effectiveTime=time.time() - 3600,
    )
    got = signer_client.get_signing_profile(profileName=revoked_profile["name"])
    assert got["status"] == "Revoked" and "revocationRecord" in got
    _refused(client, name, package)
    manifest = signatures.extract(package).manifest  # type: ignore[union-attr]
    status = signer_client.get_revocation_status(
        signatureTimestamp=manifest.signed_at,
        platformId="AWSLambda-SHA384-ECDSA",
        profileVersionArn=revoked_profile["profileVersionArn"],
        jobArn=f"arn:aws:signer:us-east-1:000000000000:/signing-jobs/{manifest.job_id}",
        certificateHashes=["0" * 64],
    )
    assert status["revokedEntities"] == [revoked_profile["profileVersionArn"]]
    with pytest.raises(signer_client.exceptions.ValidationException):
        signer_client.sign_payload(
            profileName=revoked_profile["name"],
            payload=json.dumps({"digest": {"SHA-384": "0" * 96}}).encode(),
            payloadFormat=signatures.PAYLOAD_FORMAT,
        )

    # CancelSigningProfile: its signatures are no longer trusted either.
    package = sign(server, tmp_path, code("v5"), canceled["name"])
    signer_client.cancel_signing_profile(profileName=canceled["name"])
    _refused(client, name, package)


def test_a_function_with_a_config_takes_only_trusted_layers(
    server: Server, client: Any, tmp_path: Path
) -> None:
    trusted = profile(server)
    enforce = config(client, "Enforce", trusted["profileVersionArn"])
    layer_zip = make_zip({"python/helper.py": "VALUE = 1\n"})
    # PublishLayerVersion checks nothing (a layer has no config), as on AWS.
    unsigned_layer = client.publish_layer_version(LayerName="plain", Content={"ZipFile": layer_zip})
    signed_layer = client.publish_layer_version(
        LayerName="signed", Content={"ZipFile": sign(server, tmp_path, layer_zip, trusted["name"])}
    )
    package = sign(server, tmp_path, code("layered"), trusted["name"])
    name = "layers-" + uuid.uuid4().hex[:8]
    with pytest.raises(client.exceptions.CodeVerificationFailedException):
        create_function(
            client,
            name,
            wait=False,
            CodeSigningConfigArn=enforce,
            Code={"ZipFile": package},
            Layers=[unsigned_layer["LayerVersionArn"]],
        )
    create_function(
        client,
        name,
        CodeSigningConfigArn=enforce,
        Code={"ZipFile": package},
        Layers=[signed_layer["LayerVersionArn"]],
    )
    with pytest.raises(client.exceptions.CodeVerificationFailedException):
        client.update_function_configuration(FunctionName=name, Layers=[unsigned_layer["LayerVersionArn"]])


def test_signer_errors_are_in_signers_shape(server: Server) -> None:
    path = "/signing-profiles/nosuchprofile"
    request = urllib.request.Request(
        server.endpoint + path, headers=server.signed_headers("GET", path, service="signer")
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 404
    assert answer.value.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert set(json.loads(answer.value.read())) == {"message"}


def test_lambdad_sign_says_why_it_cannot_sign(server: Server, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # Wide enough that the console does not wrap its one-line answers.
        env = server.cli_env(COLUMNS="500")
        command = [str(Path(sys.executable).parent / "lambdad"), "sign", "--endpoint", server.endpoint, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    source = tmp_path / "in.zip"
    source.write_bytes(code("x"))
    missing = run("--profile", "nosuchprofile", str(source))
    assert missing.returncode == 1 and "ResourceNotFoundException" in missing.stderr
    made = profile(server)
    signed = tmp_path / "in.signed.zip"
    assert run("--profile", made["name"], str(source)).returncode == 0  # default output: IN.signed.zip
    assert signatures.is_signed(signed.read_bytes())
    again = run("--profile", made["name"], str(signed))
    assert again.returncode == 1 and "already has a signature" in again.stderr
    text = tmp_path / "notes.txt"
    text.write_text("not a zip")
    assert "not a zip" in run("--profile", made["name"], str(text)).stderr
    signer(server).cancel_signing_profile(profileName=made["name"])
    canceled = run("--profile", made["name"], str(source))
    assert canceled.returncode == 1 and "ValidationException" in canceled.stderr


def test_signing_profile_tags(server: Server) -> None:
    client = signer(server)
    made = profile(server, tags={"team": "a"})
    client.tag_resource(resourceArn=made["arn"], tags={"stage": "prod"})
    assert client.list_tags_for_resource(resourceArn=made["arn"])["tags"] == {"team": "a", "stage": "prod"}
    client.untag_resource(resourceArn=made["arn"], tagKeys=["team"])
    assert client.list_tags_for_resource(resourceArn=made["arn"])["tags"] == {"stage": "prod"}
    with pytest.raises(client.exceptions.NotFoundException):
        client.list_tags_for_resource(resourceArn=made["arn"] + "missing")
