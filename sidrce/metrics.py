"""Prometheus exposition of the report: a custom collector over the latest published report.

Names follow Prometheus conventions: ``sidrce_`` prefix, base units (latency in seconds), counters
ending in ``_total``. A group whose FTI is undefined has no ``sidrce_fti`` sample rather than NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from sidrce import __version__
from sidrce.fti import GRADES

GROUP_LABELS = ["domain", "hypothesis"]


class ReportCollector(Collector):
    """Yields metric families from ``get_report()`` (the server's current report) on each scrape."""

    def __init__(self, get_report: Callable[[], dict[str, Any] | None]) -> None:
        self.get_report = get_report

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("sidrce_build", "SIDRCE build information")
        info.add_metric([], {"version": __version__})
        yield info
        report = self.get_report()
        if report is None:
            return
        records = CounterMetricFamily("sidrce_telemetry_records", "Telemetry records accepted")
        records.add_metric([], report["count"])
        yield records
        rejected = CounterMetricFamily(
            "sidrce_telemetry_rejected", "Telemetry lines rejected, by reason", labels=["reason"]
        )
        for reason, n in report["rejected"].items():
            rejected.add_metric([reason], n)
        yield rejected
        if report["fti_avg"] is not None:
            yield GaugeMetricFamily(
                "sidrce_fti_avg", "Record-weighted mean FTI over groups", value=report["fti_avg"]
            )
        if report["fti_grade_worst"] is not None:
            yield GaugeMetricFamily(
                "sidrce_fti_grade_worst",
                "Worst group grade: 0 OK, 1 WARN, 2 FAIL",
                value=GRADES.index(report["fti_grade_worst"]),
            )
        # the spec's λ with no records is its "no evidence" 0.5; a series should not chart a
        # figure that no record gave (/report still carries it, with its counts beside it)
        if report["count"] and report["lambda_effective"] is not None:
            yield GaugeMetricFamily(
                "sidrce_lambda_effective",
                "λ_SIBG × exp(−λ_ASDPI × days since change)",
                value=report["lambda_effective"],
            )
        fti = GaugeMetricFamily("sidrce_fti", "FTI of a (domain, hypothesis) group", labels=GROUP_LABELS)
        lat = GaugeMetricFamily(
            "sidrce_median_latency_p95_seconds", "Median p95 fit latency", labels=GROUP_LABELS
        )
        qps = GaugeMetricFamily("sidrce_median_qps", "Median fits per second", labels=GROUP_LABELS)
        cost = GaugeMetricFamily(
            "sidrce_median_infra_cost_usd", "Median step cost in USD", labels=GROUP_LABELS
        )
        # the studies' North Star figures: only groups whose records carry them get a sample
        study = {
            "median_reliability_score": GaugeMetricFamily(
                "sidrce_study_reliability_score",
                "Median reliability score of the studies",
                labels=GROUP_LABELS,
            ),
            "median_SR9": GaugeMetricFamily(
                "sidrce_study_sr9", "Median SR9 of the studies", labels=GROUP_LABELS
            ),
            "median_DI2": GaugeMetricFamily(
                "sidrce_study_di2", "Median DI2 of the studies", labels=GROUP_LABELS
            ),
        }
        # a group whose effects come from several studies has no effect sample: a median or
        # "latest" of unlike effects is no figure; sidrce_study_effect_studies says how many
        effect = GaugeMetricFamily(
            "sidrce_study_causal_effect",
            "Causal effect of the latest study (only where the group's effects are of one study)",
            labels=GROUP_LABELS,
        )
        effect_studies = GaugeMetricFamily(
            "sidrce_study_effect_studies",
            "Studies behind the group's causal effects (as north_star.effect_studies); above 1 no effect sample",
            labels=GROUP_LABELS,
        )
        for g in report["groups"]:
            labels = [g["domain"], g["hypothesis"]]
            if g["fti"] is not None:
                fti.add_metric(labels, g["fti"])
            m = g["medians"]
            lat.add_metric(labels, m["latency_p95_ms"] / 1000.0)
            qps.add_metric(labels, m["qps"])
            cost.add_metric(labels, m["infra_cost_usd"])
            ns = g["north_star"]
            for key, family in study.items():
                if ns[key] is not None:
                    family.add_metric(labels, ns[key])
            if ns["latest"]["causal_effect"] is not None:
                effect.add_metric(labels, ns["latest"]["causal_effect"])
            if ns["effect_studies"]:
                effect_studies.add_metric(labels, ns["effect_studies"])
        yield from (fti, lat, qps, cost, *study.values(), effect, effect_studies)


def registry_for(get_report: Callable[[], dict[str, Any] | None]) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(ReportCollector(get_report))
    return reg


class HealthCollector(Collector):
    """The server's reading of its telemetry file: whether it is up, failed polls, last good read."""

    def __init__(self, health: dict[str, Any]) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        h = self.health
        yield GaugeMetricFamily(
            "sidrce_telemetry_up",
            "1 when the telemetry file is being read without error (as /readyz), else 0",
            value=1 if h["up"] else 0,
        )
        yield CounterMetricFamily(
            "sidrce_telemetry_read_errors", "Polls of the telemetry file that failed", value=h["read_errors"]
        )
        if h["last_read"] is not None:
            yield GaugeMetricFamily(
                "sidrce_telemetry_last_read_timestamp_seconds",
                "Unix time of the last poll that read the telemetry file",
                value=h["last_read"],
            )


def health_registry(health: dict[str, Any]) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(HealthCollector(health))
    return reg
