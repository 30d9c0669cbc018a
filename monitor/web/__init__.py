"""spmon's own HTTP surfaces beyond the probes: the JSON API under /api/v1 (and the status page)."""
