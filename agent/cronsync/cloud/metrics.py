"""Job and agent metrics to CloudWatch: cheap, and never able to fail what reports them.

Namespace from the repository's ``[cloudwatch] metrics_namespace``, dimensions ``Host``
and (for job metrics) ``Job``. Clients are made with the short metrics timeouts
(:data:`~cronsync.host.awsclients.METRICS_TIMEOUTS`: a hanging CloudWatch costs a job's shim
or a timer sync ~5 s at most, never the default 30 s and retries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from cronsync.host.awsclients import METRICS_TIMEOUTS, AwsSettings, make_client

MAX_VALUES = 1000  # PutMetricData takes at most 1000 values (and 1 MB) per call; one of
# our data is a value and a few hundred bytes, so 1000 of them stay far below 1 MB


@dataclass(frozen=True)
class Metric:
    """One data point; ``job`` adds the dimension ``Job`` to the call's dimensions."""

    name: str
    value: float
    unit: str = "Count"
    job: Optional[str] = None


def job_metrics(succeeded: bool, duration: Optional[float], timed_out: bool) -> list[Metric]:
    """Return the metrics of one finished run (pure)."""
    metrics = [
        Metric("JobRuns", 1.0),
        Metric("JobSucceeded", 1.0 if succeeded else 0.0),
        Metric("JobFailed", 0.0 if succeeded else 1.0),
        Metric("JobTimedOut", 1.0 if timed_out else 0.0),
    ]
    if duration is not None:
        metrics.append(Metric("JobDuration", duration, "Seconds"))
    return metrics


def metric_data(metrics: Sequence[Metric], dimensions: Mapping[str, str]) -> list[dict[str, Any]]:
    """Return ``put_metric_data``'s MetricData for ``metrics`` (pure): each with
    ``dimensions``, and ``Job`` for a metric of one job."""
    return [
        {
            "MetricName": m.name,
            "Value": m.value,
            "Unit": m.unit,
            "Dimensions": _dimensions(
                dimensions if m.job is None else {**dimensions, "Job": m.job}
            ),
        }
        for m in metrics
    ]


def _dimensions(dimensions: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in sorted(dimensions.items())]


def metrics_client(aws: AwsSettings) -> Any:
    """Return a ``cloudwatch`` client with the short metrics timeouts (one attempt).

    Parameter validation is off: :func:`metric_data` builds every request.
    """
    return make_client("cloudwatch", aws, validate=False, timeouts=METRICS_TIMEOUTS)


def put(
    client: Any,
    namespace: str,
    metrics: Sequence[Metric],
    dimensions: Mapping[str, str],
    host_level: bool = False,
) -> None:
    """Send ``metrics`` with ``put_metric_data``: one call per ``MAX_VALUES`` data (raises
    what botocore raises; the calls before a failed one are made)."""
    data = metric_data(metrics, dimensions)
    if host_level:
        data += metric_data(metrics, {"Host": dimensions["Host"]})
    for start in range(0, len(data), MAX_VALUES):
        client.put_metric_data(Namespace=namespace, MetricData=data[start : start + MAX_VALUES])


def problem_line(exc: BaseException) -> str:
    """The one line logged when publishing failed."""
    return f"metrics not published: {type(exc).__name__}: {exc}"


def publish(
    settings: Mapping[str, Any],
    metrics: Sequence[Metric],
    dimensions: Mapping[str, str],
    client: Any = None,
    host_level: bool = False,
) -> Optional[str]:
    """Publish ``metrics`` when the host enables CloudWatch metrics.

    Args:
        settings: the release's compiled run settings.
        metrics: what to publish.
        dimensions: e.g. {"Host": "batch-1", "Job": "nightly"}.
        client: a ``cloudwatch`` client (made from the settings, with the short
            metrics timeouts, when None).
        host_level: also publish each metric with the ``Host`` dimension alone (what
            one alarm per host watches).

    Returns:
        None on success or when metrics are off; else a one-line reason (never raised:
        a metric must not fail a job or a sync).
    """
    if not (settings.get("metrics") or {}).get("cloudwatch"):
        return None
    try:
        if client is None:
            client = metrics_client(AwsSettings.from_json(settings.get("aws") or {}))
        namespace = str(settings.get("metrics_namespace", "Cronsync"))
        put(client, namespace, metrics, dimensions, host_level)
    except Exception as exc:
        return problem_line(exc)
    return None
