"""Domains: simulators with ground truth (direct_lab, cosmology) and the user's own data (csv)."""
