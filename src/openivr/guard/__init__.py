"""A node on the open internet: password guessing, floods, security events."""
