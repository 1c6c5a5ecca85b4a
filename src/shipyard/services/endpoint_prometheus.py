"""The server's Prometheus metrics: what the scoring gateway counted, read at scrape time.

No Prometheus object is touched per request: the gateway adds to ``ScoringStats`` as before,
and this collector turns its cumulative counts (``snapshot``) and the runtime's instance
figures into metric families when ``/metrics`` is read. Only deployments the runtime knows are
exported (labels ``workspace``, ``endpoint``, ``deployment``; ``code`` and ``credential`` take
a handful of values), so a deleted deployment's series end and the label sets stay bounded.
Nothing a caller sent (keys, tokens, bodies) is a label.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from shipyard.services.deployment_runtime import DeploymentRuntime
from shipyard.services.scoring_stats import LATENCY_BUCKETS, ScoringStats

PREFIX = "shipyard_online_deployment"
_LABELS = ["workspace", "endpoint", "deployment"]


class DeploymentCollector(Collector):
    def __init__(self, stats: ScoringStats, runtime: DeploymentRuntime | None) -> None:
        self.stats = stats
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}_requests",
            "Scoring requests through the gateway, by the status code returned.",
            labels=[*_LABELS, "code"],
        )
        callers = CounterMetricFamily(
            f"{PREFIX}_requests_by_credential",
            "Scoring requests by the endpoint credential the caller used "
            "(primary, secondary, aml_token).",
            labels=[*_LABELS, "credential"],
        )
        latency = HistogramMetricFamily(
            f"{PREFIX}_request_duration_seconds",
            "Time from the gateway sending a request on to its answer.",
            labels=_LABELS,
        )
        restarts = CounterMetricFamily(
            f"{PREFIX}_instance_restarts",
            "Instance restarts (crashes, failed probes) since this server started them.",
            labels=_LABELS,
        )
        ready = GaugeMetricFamily(
            f"{PREFIX}_ready_instances", "Instances taking traffic now.", labels=_LABELS
        )
        collected = CounterMetricFamily(
            f"{PREFIX}_collected_requests",
            "Scoring requests the data collector wrote to the deployment's datastore.",
            labels=_LABELS,
        )
        dropped = CounterMetricFamily(
            f"{PREFIX}_collection_dropped_requests",
            "Sampled scoring requests the data collector dropped (buffer full, failed write).",
            labels=_LABELS,
        )
        collection = self.stats.collection()
        known = self.runtime.deployments() if self.runtime is not None else []
        counted = self.stats.snapshot()
        bounds = [str(bound) for bound in LATENCY_BUCKETS] + ["+Inf"]
        for workspace, endpoint, route in known:
            labels = [workspace, endpoint, route.name]
            assert self.runtime is not None
            restarts.add_metric(labels, self.runtime.restarts(route.id))
            ready.add_metric(labels, self.runtime.ready_instances(route.id))
            if route.id in collection:
                collected.add_metric(labels, collection[route.id][0])
                dropped.add_metric(labels, collection[route.id][1])
            stats = counted.get(route.id)
            if stats is None:
                continue
            for code, count in sorted(stats.by_status.items()):
                requests.add_metric([*labels, str(code)], count)
            for credential, count in sorted(stats.by_credential.items()):
                callers.add_metric([*labels, credential], count)
            latency.add_metric(
                labels,
                buckets=list(zip(bounds, stats.bucket_counts, strict=True)),
                sum_value=stats.latency_seconds_total,
            )
        yield from (requests, callers, latency, restarts, ready, collected, dropped)


def prometheus_registry(
    stats: ScoringStats, runtime: DeploymentRuntime | None
) -> CollectorRegistry:
    """A registry of its own: the process-wide default one would also export whatever any
    imported library registered there."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeploymentCollector(stats, runtime))
    return registry


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The exposition in the format the scraper asked for (text, or OpenMetrics)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
