"""What every simulator shares: the store writer, the truth group, chunk files and the orchestration.

``flow`` (what a simulator tells the shared code), ``store`` (frames -> zarr regions, progress, resume),
``truth`` (the truth group's layout), ``chunk_files`` (whole chunks written as files), ``parallel``
(local processes or a dask cluster, progress bars).
"""
