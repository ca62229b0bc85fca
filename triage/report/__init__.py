"""The CX health report: sentiment, urgency, categories, churn risk, alerts and LLM spend over a window."""
