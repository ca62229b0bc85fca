"""triage: reads customer-support messages from Kafka, judges them, and routes what matters."""

__version__ = "0.1.0"
