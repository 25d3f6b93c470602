"""Placeholder: filled in by the domains / materials work."""
