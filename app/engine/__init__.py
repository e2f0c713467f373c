"""Runs lessons and observes torch; imports nothing from app.api."""
