"""Tests of the audio layer."""
