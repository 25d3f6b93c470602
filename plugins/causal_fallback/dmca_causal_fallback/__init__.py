"""DMCA plugin causal_fallback."""
