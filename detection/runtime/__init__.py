"""Plumbing every layer above may use, and that knows nothing of detection: torchrun's ranks
(``distributed``), a per-stage stopwatch and a time / memory meter (``stopwatch``, ``usage``),
config dataclasses from YAML and ``--set`` (``config_io``) and their generated reference
(``config_reference``)."""
