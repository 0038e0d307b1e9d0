"""Settings come from LAMBDAD_* variables, then flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.settings import Settings


def test_environment_then_overrides() -> None:
    settings = Settings.from_env(
        {"LAMBDAD_PORT": "4000", "LAMBDAD_DATA_DIR": "/d", "LAMBDAD_REGION": "eu-west-1"},
        port=5000,
        region=None,
    )
    assert (settings.port, settings.data_dir, settings.region) == (5000, Path("/d"), "eu-west-1")
    assert settings.resolved_database_url == "sqlite:////d/lambdad.db"


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.account_id) == ("127.0.0.1", 3001, "000000000000")


def test_account_id_must_be_twelve_digits() -> None:
    with pytest.raises(ValueError, match="12 digits"):
        Settings.from_env({"LAMBDAD_ACCOUNT_ID": "42"})


def test_the_host_network_is_the_operators_to_allow() -> None:
    assert not Settings.from_env({}).host_network_allowed
    assert Settings.from_env({"LAMBDAD_ALLOW_HOST_NETWORK": "1"}).host_network_allowed
    assert not Settings.from_env({"LAMBDAD_ALLOW_HOST_NETWORK": "false"}).host_network_allowed
    assert Settings.from_env({}, allow_host_network=True).host_network_allowed
    # A server whose every function runs on the host network has allowed it already.
    assert Settings.from_env({"LAMBDAD_NETWORK": "host"}).host_network_allowed
