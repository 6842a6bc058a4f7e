"""Slack's /dr commands and buttons: verification, the grammar, authorisation, replies, the queue,
and the operations below them."""
