"""Metrics. Importing this package registers every metric in ``METRICS``."""

from . import continuous, curation, discrete, drift, general, images, labels, neural, text  # noqa: F401  (registration)
from .base import METRICS, Metric, MetricContext, applicable, metric

__all__ = ["METRICS", "Metric", "MetricContext", "applicable", "metric"]
