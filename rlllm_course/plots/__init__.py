"""Plotting helpers for the notebooks, apart from the math (one file per topic)."""
