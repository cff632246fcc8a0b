"""Timing: the SPP-net vs R-CNN timing loop over trained models, and the report it renders."""
