"""Scenario grid -> results: fleets through the engine, impacts, aggregation, defaults and provenance
(the xarray glue between the inputs and the engine)."""
