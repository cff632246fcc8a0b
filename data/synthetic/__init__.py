"""The embedded default benchmark: a synthetic detection dataset written in the VOC layout.

Shapes of 12 classes (some pairs deliberately easy to confuse) with varied aspect, rotation,
colour, texture (including patches of real photos) and shading, plus unannotated distractors,
pasted with occlusion and truncation onto crops of real photographs. See :func:`generate`.
"""

from data.synthetic.generate import SyntheticConfig, generate
from data.synthetic.shapes import CLASSES

__all__ = ["CLASSES", "SyntheticConfig", "generate"]
