"""OpenTelemetry metrics: every RPC, and the domain counters services record.

RPC metrics are recorded by the call interceptor (servicekit.interceptors) for every method
but health checks and reflection:

- ``rpc.server.duration`` (histogram, seconds), by ``rpc.method`` (``/pkg.Service/Method``)
  and ``rpc.grpc.status_code`` (the code's name: ``OK``, ``NOT_FOUND``, ...); a stream is
  measured from its start to its end;
- ``rpc.server.active_requests`` (up-down counter), by ``rpc.method``: calls in flight.

Domain counters (:class:`DomainMetrics`, names fixed here so that alerts and dashboards can
rely on them; a service records them where the event happens):

- ``carenet.referral.transitions`` by ``from_status`` and ``to_status``;
- ``carenet.outcomes.measurements`` by ``result`` (accepted, duplicate, corrected,
  rejected);
- ``carenet.identity.authorize.decisions`` by ``decision`` (permit, deny) and ``basis``;
- ``carenet.identity.access_log.appends`` (entries appended);
- ``carenet.identity.access_log.verifications`` by ``result`` (ok, or the failure's
  reason);
- ``carenet.outbox.lag`` (gauge, seconds): age of the oldest event not yet delivered, by
  ``consumer``.

Attribute values are codes and enumerations, never identifying data. Without an SDK meter
provider (``OTEL_METRICS_EXPORTER`` unset or ``none``) every instrument is a no-op. Exported
with the traces' OTLP settings to the collector, which exposes them to Prometheus
(infra/otel/collector.yaml), where the names become e.g. ``rpc_server_duration_seconds``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

METER_NAME = "servicekit"

RPC_DURATION = "rpc.server.duration"
RPC_ACTIVE = "rpc.server.active_requests"
REFERRAL_TRANSITIONS = "carenet.referral.transitions"
MEASUREMENTS = "carenet.outcomes.measurements"
AUTHORIZE_DECISIONS = "carenet.identity.authorize.decisions"
ACCESS_LOG_APPENDS = "carenet.identity.access_log.appends"
ACCESS_LOG_VERIFICATIONS = "carenet.identity.access_log.verifications"
OUTBOX_LAG = "carenet.outbox.lag"

# Bucket bounds (seconds) for RPC durations: 1 ms to 10 s.
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def metrics_recorded(provider: MeterProvider | None = None) -> bool:
    """Whether measurements go anywhere: a provider is given, or the global one is the
    SDK's (not the API's no-op or proxy provider)."""
    if provider is not None:
        return True
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

    return isinstance(metrics.get_meter_provider(), SdkMeterProvider)


def _meter(provider: MeterProvider | None) -> Meter:
    return (provider or metrics.get_meter_provider()).get_meter(METER_NAME)


class RpcMetrics:
    """The two RPC instruments of one server."""

    def __init__(self, provider: MeterProvider | None = None) -> None:
        meter = _meter(provider)
        self.duration = meter.create_histogram(
            RPC_DURATION,
            unit="s",
            description="Duration of server RPCs by method and status code",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.active = meter.create_up_down_counter(
            RPC_ACTIVE, unit="{request}", description="Server RPCs in flight by method"
        )

    def started(self, method: str) -> None:
        self.active.add(1, {"rpc.method": method})

    def finished(self, method: str, code: str, seconds: float) -> None:
        self.active.add(-1, {"rpc.method": method})
        self.duration.record(seconds, {"rpc.method": method, "rpc.grpc.status_code": code})


class DomainMetrics:
    """The domain counters of :mod:`servicekit.metrics`; one per process is enough
    (:func:`domain`)."""

    def __init__(self, provider: MeterProvider | None = None) -> None:
        meter = _meter(provider)
        self._transitions = meter.create_counter(
            REFERRAL_TRANSITIONS, unit="{transition}", description="Referral status changes"
        )
        self._measurements = meter.create_counter(
            MEASUREMENTS, unit="{measurement}", description="Measurements by ingest result"
        )
        self._decisions = meter.create_counter(
            AUTHORIZE_DECISIONS, unit="{decision}", description="Authorize decisions"
        )
        self._appends = meter.create_counter(
            ACCESS_LOG_APPENDS, unit="{entry}", description="Access-log entries appended"
        )
        self._verifications = meter.create_counter(
            ACCESS_LOG_VERIFICATIONS, unit="{run}", description="Access-log verifications"
        )
        self._lag_sources: dict[str, Callable[[], float]] = {}
        self._lock = threading.Lock()
        meter.create_observable_gauge(
            OUTBOX_LAG,
            callbacks=[self._observe_lag],
            unit="s",
            description="Age of the oldest undelivered outbox event by consumer",
        )

    def referral_transition(self, from_status: str, to_status: str) -> None:
        self._transitions.add(1, {"from_status": from_status, "to_status": to_status})

    def measurements(self, result: str, count: int = 1) -> None:
        """``result``: accepted, duplicate, corrected or rejected."""
        if count:
            self._measurements.add(count, {"result": result})

    def authorize_decision(self, decision: str, basis: str) -> None:
        self._decisions.add(1, {"decision": decision, "basis": basis})

    def access_log_appended(self, count: int = 1) -> None:
        if count:
            self._appends.add(count)

    def access_log_verified(self, result: str) -> None:
        """``result``: ``ok``, or the reason verification failed (e.g. HEAD_ROLLED_BACK)."""
        self._verifications.add(1, {"result": result})

    def outbox_lag(self, consumer: str, seconds: Callable[[], float]) -> None:
        """Registers a function giving the outbox lag of ``consumer``, read at export."""
        with self._lock:
            self._lag_sources[consumer] = seconds

    def _observe_lag(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            sources = list(self._lag_sources.items())
        for consumer, seconds in sources:
            try:
                value = seconds()
            except Exception:  # noqa: S112 - a failed probe skips one export
                continue
            yield Observation(value, {"consumer": consumer})


_domain: list[DomainMetrics] = []
_domain_lock = threading.Lock()


def domain() -> DomainMetrics:
    """The process's domain counters (created on first use, on the global provider)."""
    with _domain_lock:
        if not _domain:
            _domain.append(DomainMetrics())
        return _domain[0]
