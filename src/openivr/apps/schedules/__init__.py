"""Schedules (opening hours): schema and service."""
