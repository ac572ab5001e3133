"""Services: what the API asks for, built on the pure engine and the state layer.

``decide`` is pure; the others do I/O through :mod:`router.state` only.
"""
