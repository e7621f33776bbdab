"""Helpers for running CPython's own socket test suite against asock_sync."""
