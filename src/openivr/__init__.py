"""OpenIVR: a self-hosted voice-response platform."""

__version__ = "0.1.0"
