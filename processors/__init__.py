"""Processor connectors: one module per processor behind the `Processor` Protocol of `base`."""
