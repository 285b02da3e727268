"""Callback calls: the request checked, the parties and caller ids it names."""
