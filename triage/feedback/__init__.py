"""The team's corrections become labels: Slack buttons (Socket Mode), helpdesk changes (Zendesk ticket
events), and what the store's labels are used for (re-routing, training, the report)."""
