"""Prompts of voice apps: the prompt service (its router is api/prompts.py)."""
