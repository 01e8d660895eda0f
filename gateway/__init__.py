"""The gateway's edge and process: HTTP app, auth, idempotency, settings, CLI, storage."""
