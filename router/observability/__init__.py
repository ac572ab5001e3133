"""Metrics, request logs, the access middleware and request/lead ids."""
