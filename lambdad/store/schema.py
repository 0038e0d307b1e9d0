"""The tables. Alembic migrations (``store/migrations``) create them; a test keeps both in step."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A function exists per region, as on AWS; its versions hang off it.
functions = Table(
    "functions",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # PutFunctionConcurrency's ReservedConcurrentExecutions; NULL = the function shares the account pool.
    Column("reserved_concurrency", Integer, nullable=True),
    # The number of the last version published: AWS never reuses a number, even after a delete.
    Column("last_version", Integer, nullable=False, server_default=text("0")),
)

function_versions = Table(
    "function_versions",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("version", String(32), primary_key=True),
    # The version as a number (0 for $LATEST), so that "10" sorts after "9".
    Column("version_number", Integer, nullable=False, server_default=text("0")),
    Column("revision_id", String(36), nullable=False),
    Column("code_sha256", String(64), nullable=False),
    Column("code_size", BigInteger, nullable=False),
    Column("unzipped_size", BigInteger, nullable=False),
    # Bytes on disk, zip and unpacked tree (0: stored before lambdad counted them).
    Column("disk_size", BigInteger, nullable=False, server_default=text("0")),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    # The rest of the configuration, as FunctionVersion fields (see store.records).
    Column("config", JSON, nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
)

# Aliases of a function: each points at a version and may route a share of invocations to another.
aliases = Table(
    "aliases",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("function_version", String(32), nullable=False),
    Column("description", String(256), nullable=False),
    # AdditionalVersionWeights, {version: weight}; {} when the alias has no routing configuration.
    Column("routing", JSON, nullable=False),
    Column("revision_id", String(36), nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
)

# Function URLs: one per function ("" qualifier) or alias; ``url_id`` names the URL's host and never
# changes. An alias's URL outlives the alias (as on AWS, it then answers 403); the function's removal
# removes them all.
function_urls = Table(
    "function_urls",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("qualifier", String(128), primary_key=True),
    Column("url_id", String(32), nullable=False, unique=True),
    Column("auth_type", String(16), nullable=False),
    # InvokeMode as set; NULL when never set (AWS then reports BUFFERED from Get/List only).
    Column("invoke_mode", String(32), nullable=True),
    Column("cors", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
)

# Tags belong to any taggable resource (functions today; event source mappings later), keyed by ARN.
tags = Table(
    "tags",
    metadata,
    Column("resource_arn", String(256), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

# Resource-based policies (AddPermission): the statements of a function ("" qualifier), a version or an
# alias, in the order they were added, with the policy's own RevisionId.
function_policies = Table(
    "function_policies",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("qualifier", String(128), primary_key=True),
    Column("statements", JSON, nullable=False),
    Column("revision_id", String(36), nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
)

# PutFunctionEventInvokeConfig, per $LATEST, version or alias.
event_invoke_configs = Table(
    "event_invoke_configs",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("qualifier", String(128), primary_key=True),
    Column("maximum_retry_attempts", Integer, nullable=True),
    Column("maximum_event_age", Integer, nullable=True),
    # DestinationConfig as AWS answers it ({"OnSuccess": {...}, "OnFailure": {...}}).
    Column("destination_config", JSON, nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
)

# PutFunctionRecursionConfig (per function; no row = Terminate) and PutRuntimeManagementConfig (per
# $LATEST or version; no row = Auto).
recursion_configs = Table(
    "recursion_configs",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("recursive_loop", String(16), nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
)

runtime_management_configs = Table(
    "runtime_management_configs",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("qualifier", String(128), primary_key=True),
    Column("update_runtime_on", String(16), nullable=False),
    Column("runtime_version_arn", String(2048), nullable=True),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
)

# Layers (PublishLayerVersion), per region as on AWS. ``last_version`` hands out version numbers, never
# reused, even after every version is deleted.
layers = Table(
    "layers",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("name", String(140), primary_key=True),
    Column("last_version", Integer, nullable=False, server_default=text("0")),
)

# One published layer version: its package (content-addressed, in the code store like functions' code),
# what it says it is compatible with (NULL when not said: AWS then leaves the member out), and its
# resource-based policy (AddLayerVersionPermission).
layer_versions = Table(
    "layer_versions",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("layer_name", String(140), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("description", String(256), nullable=False),
    Column("license_info", String(512), nullable=True),
    Column("compatible_runtimes", JSON, nullable=True),
    Column("compatible_architectures", JSON, nullable=True),
    Column("code_sha256", String(64), nullable=False),
    Column("code_size", BigInteger, nullable=False),
    Column("unzipped_size", BigInteger, nullable=False),
    Column("disk_size", BigInteger, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The policy's statements in the order added ([] = no policy) and its RevisionId.
    Column("policy", JSON, nullable=False),
    Column("policy_revision_id", String(36), nullable=True),
    ForeignKeyConstraint(
        ["account", "region", "layer_name"],
        ["layers.account", "layers.region", "layers.name"],
        ondelete="CASCADE",
    ),
)

# PutProvisionedConcurrencyConfig, per published version or alias (never $LATEST). Its status lives in
# the server's memory: a restarted server provisions every stored config again.
provisioned_concurrency_configs = Table(
    "provisioned_concurrency_configs",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("qualifier", String(128), primary_key=True),
    Column("requested", Integer, nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    # As the provisioner last reported (NULL: IN_PROGRESS): kept here so that every node of a cluster
    # answers what the node that provisions the config reported.
    Column("status", String(16), nullable=True),
    Column("allocated", Integer, nullable=False, server_default=text("0")),
    Column("status_reason", Text, nullable=True),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
)

# Capacity providers (Lambda Managed Instances): a named group of nodes (``--capacity-provider``).
# ``config`` holds the members AWS echoes (VpcConfig, PermissionsConfig, ...) as given.
capacity_providers = Table(
    "capacity_providers",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("name", String(140), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("config", JSON, nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
)

# PutFunctionScalingConfig, per published version of a function with a capacity provider.
function_scaling_configs = Table(
    "function_scaling_configs",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("qualifier", String(128), primary_key=True),
    Column("min_environments", Integer, nullable=True),
    Column("max_environments", Integer, nullable=True),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
)

# Event source mappings. No foreign key to functions: as on AWS, a mapping outlives its function (its
# invocations then fail). ``config`` holds the rest of the mapping's parameters as AWS names them.
event_source_mappings = Table(
    "event_source_mappings",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("account", String(12), nullable=False),
    Column("region", String(32), nullable=False, index=True),
    Column("function_arn", String(256), nullable=False),
    Column("event_source_arn", String(1024), nullable=False),
    # Creating | Enabling | Enabled | Disabling | Disabled | Updating | Deleting
    Column("state", String(16), nullable=False),
    Column("state_transition_reason", String(64), nullable=False),
    # Whether the user wants it running (Enabled=true); the poller moves ``state`` towards it.
    Column("enabled", Integer, nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    Column("last_processing_result", String(64), nullable=True),
    Column("config", JSON, nullable=False),
)

# Event (asynchronous) invocations waiting to run, being run, or waiting to deliver their record to a
# destination. A row is removed only once its event is finished. Times are epoch milliseconds. A worker
# holds a row while ``lease_until`` is in the future (``owner`` says which process); an expired lease,
# or one held by a process that died, lets any worker take the row again (at-least-once delivery).
async_events = Table(
    "async_events",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("account", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    # The FunctionName as invoked (a name, or a partial or full ARN) and the Qualifier, if any.
    Column("function_name", String(256), nullable=False),
    Column("qualifier", String(128), nullable=True),
    Column("payload", LargeBinary, nullable=False),
    Column("client_context", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # Not run before this moment (retries and backoff move it on).
    Column("due_at", BigInteger, nullable=False),
    # Times the function ran for this event (AWS's approximateInvokeCount).
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Times it went back to the queue for a throttle or a system error (the exponent of the backoff).
    Column("requeues", Integer, nullable=False, server_default=text("0")),
    Column("owner", String(128), nullable=True),
    Column("lease_until", BigInteger, nullable=False, server_default=text("0")),
    # The last attempt's result: {"statusCode", "payload", "functionError", "executedVersion"} after the
    # function ran, {"statusCode", "errorCode", "errorMessage"} after a throttle or system error.
    Column("response", JSON, nullable=True),
    # Once finished: AWS's condition (Success, RetriesExhausted, EventAgeExceeded,
    # ZeroReservedConcurrency) and the messages still to deliver ([{"target", "body", "attributes"}]).
    Column("outcome", String(32), nullable=True),
    Column("deliveries", JSON, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    # Which of the PARTITIONS the event belongs to (``async_events.partition_of`` its function): in a
    # cluster, one node at a time owns a partition and only it claims the partition's events.
    Column("partition", SmallInteger, nullable=False, server_default=text("0")),
    Index("ix_async_events_due_at", "due_at"),
)

# Work with exactly one owner in a cluster (lambdad.cluster.ownership): one row per piece of work held,
# its holder (node id and incarnation) and until when, on PostgreSQL's clock.
work_leases = Table(
    "work_leases",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("node_id", String(64), nullable=False),
    Column("incarnation", String(128), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=False),
)

# EventBridge Scheduler: schedule groups ("default" is made on first use in each region) and their
# schedules; deleting a group deletes its schedules. Group tags live in ``tags`` under the group's ARN.
schedule_groups = Table(
    "schedule_groups",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("group_name", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    # Everything else the API sets (expression, zone, dates, target...), as AWS's members.
    Column("config", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    Column("client_token", String(64), nullable=True),
    # The slot (scheduled time) last claimed for firing: compare-and-set, so that no slot fires twice,
    # across restarts too.
    Column("last_slot", DateTime(timezone=True), nullable=True),
    # When lambdad last fired it, and how that went (lambdad's own view, not an AWS member).
    Column("last_fired_at", DateTime(timezone=True), nullable=True),
    Column("last_result", String(512), nullable=True),
    ForeignKeyConstraint(
        ["account", "region", "group_name"],
        ["schedule_groups.account", "schedule_groups.region", "schedule_groups.name"],
        ondelete="CASCADE",
    ),
)

# Code packages (function code and layer contents) where every node of a cluster can read them: the
# local disk is each node's cache. A single server keeps them on its disk only and leaves these empty.
code_packages = Table(
    "code_packages",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    # Refreshed by every store of the digest: unreferenced packages are removed only once this is old,
    # so a create on one node is never robbed by another node's reclaimer between storing and committing.
    Column("stored_at", DateTime(timezone=True), nullable=False),
)
code_package_chunks = Table(
    "code_package_chunks",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    ForeignKeyConstraint(["sha256"], ["code_packages.sha256"], ondelete="CASCADE"),
)

# --- secrets at rest ---
# Which key ring sealed this data (one row): the id of the key that sealed last, and a value sealed with
# it that only that ring opens. A server started with another ring refuses to start (store/sealing.py).
key_ring = Table(
    "key_ring",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", String(16), nullable=False),
    Column("proof", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# --- Code signing: AWS Signer's profiles and signing jobs, Lambda's code signing configs ---
# A signing profile version: its key pair (the private key sealed with the key ring, purpose
# "signing-profile:<version ARN>"; the public key in PEM, not secret), validity and status.
signing_profiles = Table(
    "signing_profiles",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("version", String(10), nullable=False),
    Column("version_arn", String(2048), nullable=False, unique=True),
    Column("platform_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # Active | Canceled | Revoked
    Column("validity_value", Integer, nullable=False),
    Column("validity_type", String(8), nullable=False),  # DAYS | MONTHS | YEARS
    Column("private_key", Text, nullable=False),
    Column("public_key", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # RevokeSigningProfile: signatures made at or after effective_time are no longer trusted.
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(2048), nullable=True),
    Column("revocation_reason", String(500), nullable=True),
    Column("revocation_effective", DateTime(timezone=True), nullable=True),
    Column("tags", JSON, nullable=False),
)
# One signature made (SignPayload, through ``lambdad sign``): what RevokeSignature revokes.
signing_jobs = Table(
    "signing_jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("account", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("profile_name", String(64), nullable=False),
    Column("profile_version", String(10), nullable=False),
    Column("platform_id", String(64), nullable=False),
    Column("digest", String(96), nullable=False),
    Column("requested_by", String(2048), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(2048), nullable=True),
    Column("revocation_reason", String(500), nullable=True),
)
code_signing_configs = Table(
    "code_signing_configs",
    metadata,
    Column("arn", String(200), primary_key=True),
    Column("account", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("config_id", String(21), nullable=False),
    Column("description", String(256), nullable=False),
    Column("allowed_publishers", JSON, nullable=False),  # SigningProfileVersionArns
    Column("untrusted_artifact", String(8), nullable=False),  # Warn | Enforce
    Column("last_modified", DateTime(timezone=True), nullable=False),
)
# Which config a function uses (PutFunctionCodeSigningConfig, CreateFunction's CodeSigningConfigArn).
function_code_signing = Table(
    "function_code_signing",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("function_name", String(64), primary_key=True),
    Column("config_arn", String(200), nullable=False, index=True),
    ForeignKeyConstraint(
        ["account", "region", "function_name"],
        ["functions.account", "functions.region", "functions.name"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(["config_arn"], ["code_signing_configs.arn"]),
)

# --- IAM / STS (lambdad.store.identity) ---
# Identities, keyed by account everywhere: several accounts share one store. IAM names are unique per
# account without regard to case ("Bob" and "bob" are one user), so each named entity is keyed by
# ``name_key`` (the name lowercased) and keeps ``name`` as given.
iam_accounts = Table(
    "iam_accounts",
    metadata,
    Column("id", String(12), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

iam_users = Table(
    "iam_users",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("name_key", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("path", String(512), nullable=False),
    Column("user_id", String(32), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Access keys of users, and each account's root key (``user_name_key`` NULL). The secret is sealed with
# the key ring (purpose ``access-key:<AKID>``): the database alone reveals no secret.
iam_access_keys = Table(
    "iam_access_keys",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("account", String(12), nullable=False),
    Column("user_name_key", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Index("ix_iam_access_keys_owner", "account", "user_name_key"),
)

iam_roles = Table(
    "iam_roles",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("name_key", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("path", String(512), nullable=False),
    Column("role_id", String(32), nullable=False, unique=True),
    Column("trust_policy", Text, nullable=False),
    Column("max_session_duration", Integer, nullable=False),
    Column("description", String(1000), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Inline policies of users and roles (``owner_kind`` "user" or "role").
iam_inline_policies = Table(
    "iam_inline_policies",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("owner_kind", String(8), primary_key=True),
    Column("owner_key", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

# Customer managed policies and their versions (AWS managed ones are a data file in the package).
iam_policies = Table(
    "iam_policies",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("name_key", String(128), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("path", String(512), nullable=False),
    Column("policy_id", String(32), nullable=False, unique=True),
    Column("default_version", String(16), nullable=False),
    # The number the next version gets: IAM never reuses one (v1, v2, ... even after deletes).
    Column("next_version", Integer, nullable=False),
    Column("description", String(1000), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

iam_policy_versions = Table(
    "iam_policy_versions",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("policy_key", String(128), primary_key=True),
    Column("version_id", String(16), primary_key=True),
    Column("document", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["account", "policy_key"], ["iam_policies.account", "iam_policies.name_key"], ondelete="CASCADE"
    ),
)

# Managed policies (customer or AWS) attached to users and roles, by policy ARN.
iam_attachments = Table(
    "iam_attachments",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("owner_kind", String(8), primary_key=True),
    Column("owner_key", String(64), primary_key=True),
    Column("policy_arn", String(2048), primary_key=True),
    Column("attached_at", DateTime(timezone=True), nullable=False),
    Index("ix_iam_attachments_policy", "account", "policy_arn"),
)

# STS role sessions (AssumeRole's, and the ones lambdad issues for execution roles). The secret is sealed
# (purpose ``access-key:<ASIA...>``); of the session token only its SHA-256 is kept.
sts_sessions = Table(
    "sts_sessions",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("account", String(12), nullable=False),
    Column("role_arn", String(2048), nullable=False),
    Column("role_id", String(32), nullable=False),
    Column("session_name", String(64), nullable=False),
    Column("secret", Text, nullable=False),
    Column("token_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_sts_sessions_expires_at", "expires_at"),
)

# --- EC2 / networks ---
# VPCs, subnets and security groups made with EC2's API (boto3's ``ec2`` client), per account and
# region. A function's VpcConfig names subnets and security groups; the groups' egress rules become its
# sandboxes' egress policy. Tags are EC2's, kept with each resource (its TagSpecifications) as a JSON object.
vpcs = Table(
    "vpcs",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("vpc_id", String(32), primary_key=True),
    Column("cidr_block", String(43), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

subnets = Table(
    "subnets",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("subnet_id", String(32), primary_key=True),
    Column("vpc_id", String(32), nullable=False),
    Column("cidr_block", String(43), nullable=False),
    Column("availability_zone", String(40), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "vpc_id"], ["vpcs.account", "vpcs.region", "vpcs.vpc_id"], ondelete="CASCADE"
    ),
)

security_groups = Table(
    "security_groups",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("group_id", String(32), primary_key=True),
    Column("vpc_id", String(32), nullable=False),
    Column("group_name", String(255), nullable=False),
    Column("description", String(255), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "vpc_id"], ["vpcs.account", "vpcs.region", "vpcs.vpc_id"], ondelete="CASCADE"
    ),
    UniqueConstraint("account", "region", "vpc_id", "group_name", name="uq_security_groups_name"),
)

# One row per rule (EC2's SecurityGroupRule): a CIDR or a referenced group, a protocol and a port range
# (ICMP: type and code; -1 = all).
security_group_rules = Table(
    "security_group_rules",
    metadata,
    Column("account", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("rule_id", String(32), primary_key=True),
    Column("group_id", String(32), nullable=False),
    Column("is_egress", Boolean, nullable=False),
    Column("ip_protocol", String(16), nullable=False),
    Column("from_port", Integer, nullable=False),
    Column("to_port", Integer, nullable=False),
    Column("cidr_ipv4", String(43), nullable=True),
    Column("referenced_group_id", String(32), nullable=True),
    Column("description", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["account", "region", "group_id"],
        ["security_groups.account", "security_groups.region", "security_groups.group_id"],
        ondelete="CASCADE",
    ),
)
