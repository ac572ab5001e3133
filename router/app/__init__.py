"""Wiring: the litestar application, the ``serve`` launcher, the ``leadrouter`` command.

Nothing here decides anything; it builds the services and hands them to the API.
"""
