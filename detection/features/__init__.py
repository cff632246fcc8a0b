"""Windows -> fixed-length pool5 vectors: SPP-net (conv5 once per image, window projection, spatial
pyramid pooling) or R-CNN (warp each window, run the trunk on it). The only part they do not share."""
