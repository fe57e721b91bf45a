"""Running a study's cells: serially, on a local process pool, or on a Ray cluster."""

from .executors import EXECUTORS, make_executor

__all__ = ["EXECUTORS", "make_executor"]
