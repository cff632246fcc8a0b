"""Per-class linear SVMs with hard-negative mining (R-CNN / SPP-net recipe)."""
