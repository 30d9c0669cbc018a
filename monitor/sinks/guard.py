"""The connect-time SSRF guard sinks use; it lives in `monitor.netguard`, shared with sources."""

from monitor.netguard import AddressRefused, GuardedResolver

__all__ = ["AddressRefused", "GuardedResolver"]
