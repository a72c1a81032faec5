"""secretscan."""
