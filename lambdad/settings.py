"""One Settings object: the only place that reads lambdad's environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Settings:
    """How one lambdad server is configured.

    Built once at start-up (``Settings.from_env``) and passed to whatever needs it; nothing below the
    composition root reads the environment.
    """

    host: str = "127.0.0.1"
    port: int = 3001
    data_dir: Path = field(default_factory=lambda: Path(".lambdad"))
    account_id: str = DEFAULT_ACCOUNT_ID
    region: str = DEFAULT_REGION
    # SQLAlchemy URL; empty means the embedded SQLite database inside data_dir.
    database_url: str = ""
    log_level: str = "info"
    # Control-plane requests per second the API accepts before answering TooManyRequestsException
    # (AWS throttles its control plane too); 0 means no limit.
    api_rate_limit: float = 0
    # Total code storage per region, in bytes (AWS's default quota is 75 GB).
    code_storage_limit: int = 80_530_636_800

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``LAMBDAD_*`` variables, then explicit overrides (CLI flags) on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if "LAMBDAD_HOST" in env:
            values["host"] = env["LAMBDAD_HOST"]
        if "LAMBDAD_PORT" in env:
            values["port"] = int(env["LAMBDAD_PORT"])
        if "LAMBDAD_DATA_DIR" in env:
            values["data_dir"] = Path(env["LAMBDAD_DATA_DIR"])
        if "LAMBDAD_ACCOUNT_ID" in env:
            values["account_id"] = env["LAMBDAD_ACCOUNT_ID"]
        if "LAMBDAD_REGION" in env:
            values["region"] = env["LAMBDAD_REGION"]
        if "LAMBDAD_DATABASE_URL" in env:
            values["database_url"] = env["LAMBDAD_DATABASE_URL"]
        if "LAMBDAD_LOG_LEVEL" in env:
            values["log_level"] = env["LAMBDAD_LOG_LEVEL"]
        if "LAMBDAD_API_RATE_LIMIT" in env:
            values["api_rate_limit"] = float(env["LAMBDAD_API_RATE_LIMIT"])
        if "LAMBDAD_CODE_STORAGE_LIMIT" in env:
            values["code_storage_limit"] = int(env["LAMBDAD_CODE_STORAGE_LIMIT"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        settings = cls(**values)
        if not (len(settings.account_id) == 12 and settings.account_id.isdigit()):
            raise ValueError(f"account id must be 12 digits, got {settings.account_id!r}")
        return settings

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one, or SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'lambdad.db').resolve()}"

    @property
    def code_dir(self) -> Path:
        """Where code packages live, content-addressed by SHA-256."""
        return self.data_dir / "code"
