"""Plain data of the responder: signals, incidents, severity, resources, effects; no I/O."""
