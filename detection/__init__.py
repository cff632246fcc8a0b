"""SPP-net and R-CNN feature extraction, heads, training and detection."""
