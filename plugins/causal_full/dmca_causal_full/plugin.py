"""Hook implementations of the causal_full plugin."""
