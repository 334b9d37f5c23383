"""Package data: the variables table, hardware archetypes and recycling yields (TOML, with sources)."""
