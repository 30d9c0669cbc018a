"""Which addresses a sink may reach without `allow_private`: the SSRF rule as pure functions.

A sink URL is operator configuration, but a typo, a compromised config or a DNS answer can
still aim spmon at the cloud metadata service (169.254.169.254) or an internal admin API. So
by default a sink may only reach globally routable unicast addresses. The rule is applied to
URL literals at start-up (`host_refusal`) and to every address a name resolves to at connect
time (`refusal`, from the sinks' resolver), which also covers DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["Address", "host_refusal", "literal", "refusal"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DIGITS = {10: re.compile(r"[0-9]+"), 16: re.compile(r"[0-9a-f]*"), 8: re.compile(r"[0-7]+")}


def refusal(address: Address) -> str | None:
    """Why a sink may not connect to `address` unless it sets allow_private, or None.

    An IPv6 address that carries an IPv4 one (mapped ::ffff:a.b.c.d, 6to4, NAT64) is judged
    by the IPv4 address it reaches."""
    embedded = _embedded(address)
    if embedded is not None:
        return refusal(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in _UNIQUE_LOCAL:
        return "unique-local"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "private"
    return None


def host_refusal(host: str) -> str | None:
    """`refusal` for the host part of a URL, before any lookup: IP literals in every spelling
    a resolver accepts, and `localhost` names (RFC 6761: always loopback). Other names are
    judged at connect time, on the addresses they resolve to."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    address = literal(name)
    return refusal(address) if address is not None else None


def literal(host: str) -> Address | None:
    """The address `host` spells, or None for a name: IPv6, dotted IPv4, and the legacy IPv4
    forms inet_aton and the WHATWG URL parser take (2130706433, 0x7f.1, 0177.0.0.1, 127.1)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _legacy_ipv4(host)


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.lower().split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot is allowed, as in a fully qualified name
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    *head, last = [n for n in numbers if n is not None]
    # The last part fills every byte the earlier ones did not: 127.1 is 127.0.0.1.
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for index, byte in enumerate(head):
        value += byte << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _number(part: str) -> int | None:
    base, digits = 10, part
    if part.startswith("0x"):
        base, digits = 16, part[2:]
    elif len(part) > 1 and part.startswith("0"):
        base, digits = 8, part[1:]
    if not part or not _DIGITS[base].fullmatch(digits):
        return None
    return int(digits, base) if digits else 0


def _embedded(address: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
