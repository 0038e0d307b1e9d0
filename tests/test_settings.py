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


def test_sandbox_uids_is_a_range_far_from_real_users() -> None:
    assert Settings.from_env({}).sandbox_uids == (1_900_000_000, 1_900_065_535)
    chosen = Settings.from_env({"LAMBDAD_SANDBOX_UIDS": "2000000-2000999"})
    assert chosen.sandbox_uids == (2_000_000, 2_000_999)
    for bad in ("0-100", "2000-1000", "2000000000-2200000000"):
        with pytest.raises(ValueError, match="sandbox uids"):
            Settings.from_env({"LAMBDAD_SANDBOX_UIDS": bad})


def test_allowed_private_networks_are_ipv4_cidrs_normalised() -> None:
    assert Settings.from_env({}).allow_private_network == ()
    settings = Settings.from_env({"LAMBDAD_ALLOW_PRIVATE_NETWORK": "10.1.2.3/16, 192.168.5.0/24,"})
    assert settings.allow_private_network == ("10.1.0.0/16", "192.168.5.0/24")
    overlapping = Settings.from_env({"LAMBDAD_ALLOW_PRIVATE_NETWORK": "10.1.0.0/16,10.0.0.0/8,10.2.3.0/24"})
    assert overlapping.allow_private_network == ("10.0.0.0/8",)
    flagged = Settings.from_env(
        {"LAMBDAD_ALLOW_PRIVATE_NETWORK": "10.0.0.0/8"}, allow_private_network="172.16.0.0/12"
    )
    assert flagged.allow_private_network == ("172.16.0.0/12",)
    for bad in ("fd00::/8", "10.0.0.0/33", "intranet"):
        with pytest.raises(ValueError, match="not an IPv4 network"):
            Settings.from_env({"LAMBDAD_ALLOW_PRIVATE_NETWORK": bad})


def test_the_host_network_is_the_operators_to_allow() -> None:
    assert not Settings.from_env({}).host_network_allowed
    assert Settings.from_env({"LAMBDAD_ALLOW_HOST_NETWORK": "1"}).host_network_allowed
    assert not Settings.from_env({"LAMBDAD_ALLOW_HOST_NETWORK": "false"}).host_network_allowed
    assert Settings.from_env({}, allow_host_network=True).host_network_allowed
    # A server whose every function runs on the host network has allowed it already.
    assert Settings.from_env({"LAMBDAD_NETWORK": "host"}).host_network_allowed


def test_http_limits_must_be_positive() -> None:
    for variable, bad in (
        ("LAMBDAD_HTTP_MAX_CONNECTIONS", "0"),
        ("LAMBDAD_HTTP_MAX_HEADERS", "-1"),
        ("LAMBDAD_HTTP_MAX_HEADER_BYTES", "0"),
    ):
        with pytest.raises(ValueError, match="HTTP limits"):
            Settings.from_env({variable: bad})
    with pytest.raises(ValueError, match="header timeout"):
        Settings.from_env({"LAMBDAD_HTTP_HEADER_TIMEOUT": "0"})


def test_the_key_ring_lives_outside_the_data_directory_and_environments_age() -> None:
    defaults = Settings.from_env({"HOME": "/home/x"})
    assert defaults.key_file == Path("~/.config/lambdad/keyring")
    assert (defaults.environment_max_age, defaults.role_session_seconds) == (7200.0, 43200)
    settings = Settings.from_env(
        {"LAMBDAD_KEY_FILE": "/etc/lambdad/ring", "LAMBDAD_ENVIRONMENT_MAX_AGE": "3"}, key_file="/k"
    )
    assert (settings.key_file, settings.environment_max_age) == (Path("/k"), 3.0)
    with pytest.raises(ValueError, match="over 0"):
        Settings.from_env({"LAMBDAD_ENVIRONMENT_MAX_AGE": "0"})
    with pytest.raises(ValueError, match="900-43200"):
        Settings.from_env({"LAMBDAD_ROLE_SESSION_SECONDS": "60"})


def test_auth_none_is_for_loopback_only() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert Settings.from_env({}, host=host).unauthenticated_exposure is None
    for host in ("0.0.0.0", "::", "192.168.1.5", "lambdad.example.com"):
        refusal = Settings.from_env({}, host=host).unauthenticated_exposure
        assert refusal is not None and refusal.startswith(f"refusing to listen on {host} with --auth none")
        assert Settings.from_env({"LAMBDAD_INSECURE": "1"}, host=host).unauthenticated_exposure is None
        assert Settings.from_env({"LAMBDAD_AUTH": "sigv4"}, host=host).unauthenticated_exposure is None


def test_auth_and_tls_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="auth must be 'none' or 'sigv4'"):
        Settings.from_env({"LAMBDAD_AUTH": "basic"})
    with pytest.raises(ValueError, match="TLS needs both"):
        Settings.from_env({"LAMBDAD_TLS_KEY": "key.pem"})
    settings = Settings.from_env({"LAMBDAD_TLS_CERT": "c.pem", "LAMBDAD_TLS_KEY": "k.pem"})
    assert (settings.tls_cert, settings.tls_key) == ("c.pem", "k.pem")
