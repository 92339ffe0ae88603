"""Metric-based learners: an embedding and a distance to the support set."""
