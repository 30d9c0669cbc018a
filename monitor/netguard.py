"""The SSRF guard at connect time: a resolver that hands aiohttp only addresses a sink or a
watch source may reach (outside both families: sinks and sources do not import each other).

aiohttp connects to exactly the addresses its resolver returns, so filtering them there
checks the address actually connected to (re-resolving before the request would leave a
DNS-rebinding gap). IP literals never reach a resolver: callers check those themselves
(`addresses.host_refusal`).
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from monitor.core import addresses

__all__ = ["AddressRefused", "GuardedResolver"]


class AddressRefused(OSError):
    """Every address the name resolved to is one this sink may not reach. An OSError, so
    aiohttp reports it as a failed lookup (ClientConnectorDNSError) without connecting."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"address refused: {reason}")
        self.reason = reason


class GuardedResolver(AbstractResolver):
    """Wraps a resolver (aiohttp's default unless given) and drops refused addresses; a
    name with public and private answers is reached on its public ones only."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        reasons = [_refusal(result["host"]) for result in found]
        allowed = [result for result, why in zip(found, reasons, strict=True) if why is None]
        if not allowed:
            raise AddressRefused(next((why for why in reasons if why), "no address"))
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _refusal(host: str) -> str | None:
    try:
        return addresses.refusal(ipaddress.ip_address(host))
    except ValueError:
        return "not an IP address"  # a resolver must answer addresses; refuse anything else
