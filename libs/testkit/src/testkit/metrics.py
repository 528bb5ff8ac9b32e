"""The process's domain metrics (servicekit.metrics) read back in a test.

:func:`reading_domain_metrics` puts the process's domain instruments on a meter provider that
only the test reads (the ``domain_metrics`` fixture of testkit.fixtures does it for the test's
duration); :class:`MetricReadings` answers what was recorded, per metric name and attributes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from servicekit import metrics as sk_metrics

# A data point's attributes, as sorted (name, value) pairs.
Attributes = tuple[tuple[str, str], ...]


class MetricReadings:
    def __init__(self, reader: InMemoryMetricReader) -> None:
        self.reader = reader

    def points(self, name: str) -> list[tuple[Attributes, float]]:
        """Every data point of the metric ``name``: its attributes and its value."""
        data = self.reader.get_metrics_data()
        return [
            (
                tuple(sorted((k, str(v)) for k, v in (point.attributes or {}).items())),
                float(point.value),  # type: ignore[union-attr]
            )
            for resource in (data.resource_metrics if data else ())
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def counts(self, name: str) -> Counter[Attributes]:
        """A counter's totals per attribute set."""
        counts: Counter[Attributes] = Counter()
        for attributes, value in self.points(name):
            counts[attributes] += int(value)
        return counts

    def value(self, name: str, **attributes: str) -> float:
        """The one value of ``name`` with exactly these attributes (e.g. a gauge's)."""
        values = [value for key, value in self.points(name) if dict(key) == attributes]
        assert len(values) == 1, values
        return values[0]


@contextmanager
def reading_domain_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricReadings]:
    """The process's domain counters, on a provider read by this caller alone (only what is
    recorded from now on counts)."""
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[memory])
    monkeypatch.setattr(sk_metrics, "_domain", [sk_metrics.DomainMetrics(provider)])
    try:
        yield MetricReadings(memory)
    finally:
        provider.shutdown()
