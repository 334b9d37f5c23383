"""What results mean beyond one run: uncertainty ranges over draws, global sensitivity, and the
comparison of two scenarios."""
