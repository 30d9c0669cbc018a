"""The pure core: records and decisions. No I/O, no clock, no asyncio."""
