"""Webhooks: notifications out to merchants' endpoints (delivery.py, signing.py, payloads.py),
and processor events in (stripe.py)."""
