"""Paging: PagerDuty pages and the Slack card, out and back (webhooks)."""
