"""The client address of a call: the gateway's last x-forwarded-for entry, else the peer."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from common import config, origin

LOOPBACK = (ip_network("127.0.0.0/8"), ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:10.1.2.3:51234", "10.1.2.3"),
        ("ipv6:[2001:db8::1]:443", "2001:db8::1"),
        ("ipv6:[::1]:5000", "::1"),
        ("unix:/run/mesh.sock", "unix:/run/mesh.sock"),
    ],
)
def test_the_peer_address_loses_its_port(peer: str, host: str) -> None:
    assert origin.peer_host(peer) == host


def test_a_trusted_proxy_names_the_client_in_its_last_entry_only() -> None:
    # A client wrote the first two entries; Envoy appended the address it accepted.
    forwarded = [("x-forwarded-for", "203.0.113.9, 10.0.0.1, 198.51.100.7")]
    assert origin.derive("ipv4:127.0.0.1:4000", forwarded, LOOPBACK) == "198.51.100.7"


def test_repeated_headers_are_read_as_one_list() -> None:
    forwarded = [("x-forwarded-for", "203.0.113.9"), ("x-forwarded-for", "198.51.100.7")]
    assert origin.derive("ipv6:[::1]:4000", forwarded, LOOPBACK) == "198.51.100.7"


def test_a_caller_that_is_no_trusted_proxy_cannot_choose_its_address() -> None:
    forwarded = [("x-forwarded-for", "198.51.100.7")]
    assert origin.derive("ipv4:10.9.9.9:4000", forwarded, LOOPBACK) == "10.9.9.9"
    assert origin.derive("ipv4:127.0.0.1:4000", forwarded, ()) == "127.0.0.1"


def test_an_entry_envoy_would_not_write_is_ignored() -> None:
    forwarded = [("x-forwarded-for", "198.51.100.7, not-an-address")]
    assert origin.derive("ipv4:127.0.0.1:4000", forwarded, LOOPBACK) == "127.0.0.1"


def test_without_the_header_the_proxy_itself_is_the_client() -> None:
    assert origin.derive("ipv4:127.0.0.1:4000", [], LOOPBACK) == "127.0.0.1"


def test_trusted_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
    assert config.RuntimeSettings.from_env().trusted_proxies == (
        ip_network("10.0.0.0/8"),
        ip_network("192.0.2.1/32"),
    )
    monkeypatch.setenv("MESH_TRUSTED_PROXIES", ",")
    assert config.RuntimeSettings.from_env().trusted_proxies == ()
    monkeypatch.setenv("MESH_TRUSTED_PROXIES", "gateway")
    with pytest.raises(config.ConfigError, match="MESH_TRUSTED_PROXIES"):
        config.RuntimeSettings.from_env()
