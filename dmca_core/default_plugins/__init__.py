"""DMCA's built-in behaviour, registered through the same hooks as any third-party plugin."""
