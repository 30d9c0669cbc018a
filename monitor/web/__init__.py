"""What spmon serves to people and programs beside /metrics: the status page (`page`) and
the JSON API under /api/v1 (`api`)."""
