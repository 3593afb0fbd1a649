"""Helpers for the launcher tests: fake install prefixes whose executables are fixture processes."""
