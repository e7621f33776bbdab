"""Reliability tests: load, cancellation and close races, peer and link faults, hostile input."""
