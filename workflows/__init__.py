"""The payment domain: lifecycle rules, durable workflow runs and their phases, the worker."""
