"""Datasets: image records, the VOC and COCO readers, and the embedded synthetic VOC set."""
