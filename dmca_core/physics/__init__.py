"""Physics behind the simulated domains: the dark-matter halo, detection rates, halo structure.

Each module states its units in its docstring; every formula cites its source in docs/domains.md.
"""
