"""Test time: one image -> detections (``detect``); a whole split is ``detection.pipeline.split``."""
