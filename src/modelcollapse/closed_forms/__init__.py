"""Closed forms too long for ``theory.py``, one setting per module; ``theory.curve``
dispatches to them and ``theory`` re-exports their public functions."""
