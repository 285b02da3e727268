"""A prompt's fields as the API takes them: a name is all a client writes; what a GET shows
may come back, its identity unchanged."""

from __future__ import annotations

WRITABLE = ("name",)
# What a GET shows: the identity must come back unchanged; the message details (signed links,
# sizes) are derived and ignored.
IDENTITY = ("prompt_id", "type", "key", "app_id", "account_id", "record_code")
SHOWN = (
    *IDENTITY,
    "create_date",
    "record_path",
    "exists",
    "record_id",
    "file_name",
    "file_details",
    "play_path",
    "audio_length",
    "size",
    "message_url",
    "message_text",
    "message_voice",
    "default_text",
    "default_voice",
)
# A message given as text: the words and, optionally, the voice (else the app's).
SPOKEN = ("text", "voice")
