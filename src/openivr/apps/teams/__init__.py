"""Teams (the hosted API's "call service groups"): schema and service."""
