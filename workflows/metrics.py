"""What the domain counts for `GET /metrics` (prometheus-client; the edge serves them): processor
calls by account, operation and outcome, with their latency, and payments' status changes by
account. Labels are account names and closed vocabularies, never merchants or ids (a label per
merchant or payment would grow without bound)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PROCESSOR_CALLS = Counter(
    "gateway_processor_calls",
    "Processor calls, by account, operation and outcome (an Outcome, or the failure's kind).",
    ["account", "operation", "outcome"],
)
PROCESSOR_SECONDS = Histogram(
    "gateway_processor_call_seconds",
    "How long processor calls took, by account and operation.",
    ["account", "operation"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PAYMENT_STATUS = Counter(
    "gateway_payment_status_changes",
    "Payments' status changes, by the account of the payment and the status reached.",
    ["account", "status"],
)
