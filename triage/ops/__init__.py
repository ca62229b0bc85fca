"""Operating the worker: metrics and logging."""
