"""Schedules rendered for schedulers other than cron: Kubernetes, systemd, GitHub Actions.

Every rendering calls `dot schedule run NAME` with the schedule's definition embedded
(`definition.py`), so a pod or a runner needs no `dot schedule add`; see adr/0016.
"""
