"""Test time: one image -> detections (``detect``), and a whole split with a per-image cache (``split``)."""
