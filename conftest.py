"""Shared fixtures for every suite in the repository (see testkit.fixtures)."""

pytest_plugins = ["testkit.fixtures"]
