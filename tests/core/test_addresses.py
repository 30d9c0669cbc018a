"""The SSRF rule: which addresses a sink may reach without allow_private, in every spelling."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core import addresses


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("localhost", "loopback"),
        ("LOCALHOST.", "loopback"),
        ("api.localhost", "loopback"),
        ("[::1]", "loopback"),
        ("::1", "loopback"),
        ("2130706433", "loopback"),  # decimal
        ("0x7f000001", "loopback"),  # hex
        ("0177.0.0.1", "loopback"),  # octal
        ("127.1", "loopback"),  # short form
        ("0x7f.1", "loopback"),
        ("2852039166", "link-local"),  # 169.254.169.254 as one number
        ("0", "unspecified"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fc00::1", "unique-local"),
        ("fd00:ec2::254", "unique-local"),  # AWS metadata over IPv6
        ("fe80::1", "link-local"),
        ("fe80::1%25eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
    ],
)
def test_non_public_addresses_are_refused_in_every_spelling(host: str, reason: str) -> None:
    assert addresses.host_refusal(host) == reason


@pytest.mark.parametrize(
    "host",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_pass(host: str) -> None:
    assert addresses.host_refusal(host) is None


@pytest.mark.parametrize(
    "host", ["hooks.slack.com", "am.monitoring.svc", "1.2.3.4.5", "08.1.1.1", "1e1", "x127.0.0.1"]
)
def test_names_are_left_to_connect_time(host: str) -> None:
    """A name is judged by what it resolves to, when spmon connects."""
    assert addresses.literal(host) is None
    assert addresses.host_refusal(host) is None


_PART = st.one_of(
    st.integers(0, 2**32).map(str),
    st.integers(0, 2**32).map(lambda n: f"0x{n:x}"),
    st.integers(0, 2**32).map(lambda n: f"0{n:o}"),
    st.text("0123456789abcdefx", min_size=1, max_size=6),
)


@given(st.lists(_PART, min_size=1, max_size=5).map(".".join))
def test_every_ipv4_spelling_the_resolver_accepts_is_recognised(host: str) -> None:
    """glibc's inet_aton (what getaddrinfo uses for numeric hosts) is the reference: a form it
    accepts must never pass the start-up check as "a name"."""
    try:
        expected = ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return
    assert addresses.literal(host) == expected


@given(st.ip_addresses())
def test_a_refused_address_is_refused_as_ipv4_mapped_ipv6_too(address: addresses.Address) -> None:
    if isinstance(address, ipaddress.IPv4Address):
        mapped = ipaddress.IPv6Address(f"::ffff:{address}")
        assert addresses.refusal(mapped) == addresses.refusal(address)


@given(st.ip_addresses())
def test_only_global_unicast_addresses_pass(address: addresses.Address) -> None:
    if addresses.refusal(address) is None:
        assert address.is_global and not address.is_multicast
