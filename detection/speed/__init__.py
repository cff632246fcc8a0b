"""Timing: a per-stage stopwatch, the SPP-net vs R-CNN timing loop, and the report it renders."""
