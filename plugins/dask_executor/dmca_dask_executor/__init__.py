"""DMCA executor plugin ``dask``: study steps on a Dask cluster."""
