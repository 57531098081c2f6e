"""The bridge's dashboard: server-rendered pages for the ship's office."""
