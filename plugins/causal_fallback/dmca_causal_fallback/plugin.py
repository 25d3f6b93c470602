"""Hook implementations of the causal_fallback plugin."""
