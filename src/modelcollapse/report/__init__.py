"""Plots and reports of a study's results."""
