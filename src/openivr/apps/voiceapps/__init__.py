"""Voice apps: their schema (fields, defaults, validation, references) and service."""
