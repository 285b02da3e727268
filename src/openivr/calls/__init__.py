"""Live calls: routing an INVITE to a voice app and running the call engine on it."""
