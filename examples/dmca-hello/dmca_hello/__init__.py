"""dmca-hello: the smallest useful DMCA plugin."""
