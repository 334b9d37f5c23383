"""CUDA sources (package resources)."""
