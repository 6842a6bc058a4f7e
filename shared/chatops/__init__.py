"""Slack's /dr commands and buttons: the edge (requests, replies) and the operations below it."""
