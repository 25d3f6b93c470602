"""DMCA plugin causal_full."""
