"""AWS's error types (Lambda's and EventBridge Scheduler's): one closed set, translated to HTTP in one
place (``lambdad.api.dispatch``).

::

    LambdaError                       (an error AWS would name; code = the class name)
     ├── ValidationException                      400
     ├── InvalidParameterValueException           400
     ├── InvalidRequestContentException           400  (a body that is not JSON)
     ├── SerializationException                   400  (JSON whose values have the wrong types)
     ├── AccessDeniedException                    403  (the caller's policy does not allow the action)
     ├── CodeStorageExceededException             400
     ├── CapacityProviderLimitExceededException   400  (capacity providers per account)
     ├── FunctionVersionsPerCapacityProviderLimitExceededException  400
     ├── NoPublishedVersionException              400  (a Managed Instances function, unqualified)
     ├── ResourceNotFoundException                404
     ├── ResourceConflictException                409
     ├── PreconditionFailedException              412
     ├── RequestTooLargeException                 413
     ├── TooManyRequestsException                 429
     ├── ServiceException                         500
     ├── NotImplementedException                  501  (an operation lambdad does not serve yet)
     ├── UnknownOperationException                404  (no operation has this method and path)
     │   EventBridge Scheduler's own (it shares ValidationException and ResourceNotFoundException):
     ├── ConflictException                        409
     ├── ServiceQuotaExceededException            402
     ├── ThrottlingException                      429
     ├── InternalServerException                  500
     │   Code signing (Lambda's code signing configs and AWS Signer's own):
     ├── CodeSigningConfigNotFoundException       404
     ├── CodeVerificationFailedException          400  (untrusted package under Enforce)
     ├── InvalidCodeSignatureException            400  (a signature that fails its integrity check)
     ├── BadRequestException                      400  (Signer's tag operations)
     ├── NotFoundException                        404  (Signer's tag operations)
     ├── InternalServiceErrorException            500  (Signer's internal error)
     │   IAM's and STS's (query protocol; they share MalformedPolicyDocument):
     ├── NoSuchEntity                             404
     ├── EntityAlreadyExists                      409
     ├── DeleteConflict                           409
     ├── LimitExceeded                            409
     ├── MalformedPolicyDocument                  400
     ├── ValidationError                          400
     ├── InvalidInput                             400
     ├── AccessDenied                             403  (STS AssumeRole refused by the trust policy)
     └── ServiceFailure                           500
     (and the query protocols' own: InvalidAction, MissingAction, InternalFailure, Throttling, ...)

Anything else raised while serving a request is a bug: it is logged with the request id and answered
as ``ServiceException``, never as a traceback.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LambdaError(Exception):
    """An error with AWS's name, HTTP status and message."""

    status: ClassVar[int] = 400
    # AWS marks errors the caller caused as "User"; botocore ignores it but some SDKs read it.
    fault: ClassVar[str | None] = "User"
    # AWS spells the body's message member "message", except on a few errors.
    message_key: ClassVar[str] = "message"

    def __init__(self, message: str, headers: dict[str, str] | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        # Extra top-level members AWS puts in some error bodies (Reason, ...), and extra headers
        # (Retry-After, ...).
        self.fields = fields
        self.headers = headers or {}

    @property
    def code(self) -> str:
        """The error type name, as in ``x-amzn-ErrorType``."""
        return type(self).__name__


class ValidationException(LambdaError):
    """A request that does not satisfy the service model's constraints."""

    fault = None

    @classmethod
    def from_messages(cls, messages: list[str]) -> ValidationException:
        """AWS's combined wording: "N validation error(s) detected: A; B"."""
        noun = "error" if len(messages) == 1 else "errors"
        return cls(f"{len(messages)} validation {noun} detected: " + "; ".join(messages))


class InvalidParameterValueException(LambdaError):
    """A parameter that is well-formed but not acceptable."""


class InvalidRequestContentException(LambdaError):
    """A request body that cannot be parsed."""


class SerializationException(LambdaError):
    """A request whose JSON values do not have the service model's types."""

    fault = None


class AccessDeniedException(LambdaError):
    """The caller's identity-based policy does not allow the action on the resource."""

    status = 403
    fault = None  # answered by AWS's authorization layer, which adds no Type
    message_key = "Message"


class CodeStorageExceededException(LambdaError):
    """The account's total code storage would pass its limit."""


class CapacityProviderLimitExceededException(LambdaError):
    """The account's quota of capacity providers is reached."""


class FunctionVersionsPerCapacityProviderLimitExceededException(LambdaError):
    """A capacity provider's quota of function versions is reached."""


class NoPublishedVersionException(LambdaError):
    """A Managed Instances function invoked without a qualifier before a version was published."""

    message_key = "Message"


class ResourceNotFoundException(LambdaError):
    status = 404
    message_key = "Message"


class ResourceConflictException(LambdaError):
    status = 409


class ProvisionedConcurrencyConfigNotFoundException(LambdaError):
    status = 404


class PreconditionFailedException(LambdaError):
    """A RevisionId (or CodeSha256) precondition that does not hold."""

    status = 412


class RequestTooLargeException(LambdaError):
    status = 413


class TooManyRequestsException(LambdaError):
    status = 429

    @classmethod
    def rate_exceeded(cls, reason: str, retry_after_seconds: int = 1) -> TooManyRequestsException:
        """AWS's throttling answer: "Rate Exceeded." with a Reason and a Retry-After header."""
        return cls("Rate Exceeded.", headers={"Retry-After": str(retry_after_seconds)}, Reason=reason)


class ServiceException(LambdaError):
    status = 500
    fault = "Service"


class NotImplementedException(LambdaError):
    status = 501
    fault = "Service"


class UnknownOperationException(LambdaError):
    status = 404
    fault = None


class ConflictException(LambdaError):
    """Scheduler: the resource already exists, or a change conflicts with its state."""

    status = 409


class ServiceQuotaExceededException(LambdaError):
    """Scheduler: a quota (schedules per account, groups...) would be exceeded."""

    status = 402


class ThrottlingException(LambdaError):
    """Scheduler: too many requests."""

    status = 429


class InternalServerException(LambdaError):
    """Scheduler: an unexpected failure on the server's side."""

    status = 500
    fault = "Service"


# --- protocols (query, ec2) ---
# The query services' own common errors (https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html);
# query_protocol.py and ec2_protocol.py write them as XML.


class InvalidAction(LambdaError):
    """A query or ec2 request whose Action the service does not have."""


class MissingAction(LambdaError):
    """A query or ec2 request without an Action."""


class InternalFailure(LambdaError):
    """A query service's answer to an unexpected failure."""

    status = 500
    fault = "Service"


class Throttling(LambdaError):
    """A query service's (IAM, STS) answer past its rate limit."""


class RequestLimitExceeded(LambdaError):
    """EC2's answer past its rate limit."""

    status = 503


# --- Code signing (Lambda's code signing configs, AWS Signer) ---


class CodeSigningConfigNotFoundException(LambdaError):
    """Lambda: a code signing configuration ARN that names none (PutFunctionCodeSigningConfig,
    CreateFunction)."""

    status = 404


class CodeVerificationFailedException(LambdaError):
    """Lambda: the package is unsigned, expired, revoked or signed by a profile the function's code
    signing config does not allow, and its policy is Enforce."""


class InvalidCodeSignatureException(LambdaError):
    """Lambda: the package's signature fails the integrity check (refused even under Warn)."""


class BadRequestException(LambdaError):
    """Signer (tag operations): a request that is not acceptable."""


class NotFoundException(LambdaError):
    """Signer (tag operations): the resource ARN names nothing."""

    status = 404


class InternalServiceErrorException(LambdaError):
    """Signer: an unexpected failure on the server's side."""

    status = 500
    fault = "Service"


# --- SigV4 authentication --- (api/sigv4.py: which of these answers which failure, per protocol)
# rest-json services (Lambda, Scheduler, Signer), answered by AWS's front door: no "Type" in the body.


class MissingAuthenticationTokenException(LambdaError):
    status = 403
    fault = None


class IncompleteSignatureException(LambdaError):
    status = 403
    fault = None


class UnrecognizedClientException(LambdaError):
    status = 403
    fault = None


class InvalidSignatureException(LambdaError):
    status = 403
    fault = None


class ExpiredTokenException(LambdaError):
    status = 403
    fault = None


# query services (IAM, STS) and EC2.


class MissingAuthenticationToken(LambdaError):
    status = 403


class IncompleteSignature(LambdaError):
    status = 400


class InvalidClientTokenId(LambdaError):
    status = 403


class SignatureDoesNotMatch(LambdaError):
    status = 403


class ExpiredToken(LambdaError):
    status = 403


class AuthFailure(LambdaError):
    """EC2: an unknown access key, or a signature that does not match."""

    status = 401


class RequestExpired(LambdaError):
    """EC2: a request dated too far from now, or signed with expired session credentials."""

    status = 400


# --- IAM / STS ---
# The query-protocol services answer these codes (botocore maps ``NoSuchEntity`` to
# ``IAM.Client.exceptions.NoSuchEntityException`` and so on). Throttling is the protocols' (above).


class NoSuchEntity(LambdaError):
    """IAM: the user, role, policy or key named does not exist."""

    status = 404


class EntityAlreadyExists(LambdaError):
    """IAM: a user, role or policy of that name exists already (names are case-insensitive)."""

    status = 409


class DeleteConflict(LambdaError):
    """IAM: the entity still has what must go first (keys, policies, attachments)."""

    status = 409


class LimitExceeded(LambdaError):
    """IAM: a quota (two access keys per user, five versions per policy...) is reached."""

    status = 409


class MalformedPolicyDocument(LambdaError):
    """IAM/STS: a policy document that is not a policy."""


class ValidationError(LambdaError):
    """IAM/STS: a parameter outside its constraints (names, lengths, durations)."""


class InvalidInput(LambdaError):
    """IAM: a parameter that is well-formed but not acceptable (an unknown policy version...)."""


class AccessDenied(LambdaError):
    """STS/IAM: the caller may not do this (AssumeRole with a trust policy that does not allow it)."""

    status = 403


class ServiceFailure(LambdaError):
    """IAM: an unexpected failure on the server's side (IAM's model names it; STS answers InternalFailure)."""

    status = 500
    fault = "Service"


# --- EC2 / networks ---


class Ec2Error(LambdaError):
    """EC2: an error named by its code, which may hold a dot (``InvalidVpcID.NotFound``), so the code is
    given with each error rather than taken from the class name. EC2 answers every client error with 400.
    """

    fault = None

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self._code = code

    @property
    def code(self) -> str:
        return self._code


class Ec2InternalError(LambdaError):
    """EC2: an unexpected failure on the server's side (EC2's ``InternalError``)."""

    status = 500
    fault = None

    @property
    def code(self) -> str:
        return "InternalError"


class Ec2DryRun(Ec2Error):
    """EC2: a DryRun request that would have succeeded (``DryRunOperation``, HTTP 412)."""

    status = 412
