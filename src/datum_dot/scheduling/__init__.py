"""Cron schedules: the crontab lines the tool writes, reads and removes."""
