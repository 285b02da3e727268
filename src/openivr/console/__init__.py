"""The console: the web app for the people who run the phone line, a client of the public API."""

from openivr.console.site import router

__all__ = ["router"]
