"""First-response actions: the pipeline from an `act` effect to a verified result."""
