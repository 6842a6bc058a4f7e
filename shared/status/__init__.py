"""The operator's view: one status model that the CLI, GET /api/status, Slack and a web page render."""
