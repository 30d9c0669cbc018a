"""What spmon serves to people and programs beside /metrics: the status page (`page`)."""
