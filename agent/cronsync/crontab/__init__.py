"""crontab."""
