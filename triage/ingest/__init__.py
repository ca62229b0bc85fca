"""`triage ingest`: helpdesk webhooks in, records on the input topic out (docs/ingest.md)."""
