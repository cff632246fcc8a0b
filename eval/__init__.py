"""PASCAL VOC evaluation exactly as the official devkit scores, plus COCO-style AP."""
