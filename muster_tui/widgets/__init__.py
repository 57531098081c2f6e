"""Widgets and rendering helpers shared by the screens."""
