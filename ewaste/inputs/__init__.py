"""Scenario files -> validated scenario grids: TOML parsing, the variables table, the time axis, the
catalogue of bundled scenarios and hardware, validation, loading and saving grids."""
