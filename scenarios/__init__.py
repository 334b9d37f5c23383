"""Bundled scenario files (TOML)."""
