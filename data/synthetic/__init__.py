"""The embedded default benchmark: a synthetic detection dataset written in the VOC layout.

Shapes of 12 classes (:data:`BASE_CLASSES`; 20 of :data:`CLASSES` in the "voc07_20" preset), some
pairs deliberately easy to confuse, with varied aspect, rotation, colour, texture (including
patches of real photos) and shading, plus unannotated distractors, pasted with occlusion and
truncation onto crops of real photographs. See :func:`generate`; named regimes in :data:`PRESETS`
("voc07", sized like PASCAL VOC 2007, its classes with typical looks, the default; "voc07_20", the
same with 20 classes; "voc07_shape", the same with shape alone telling a class; "small", small
objects), measured by :func:`set_statistics` against :data:`VOC07_REFERENCE`.
"""

from data.synthetic.generate import DEFAULT_PRESET, PRESETS, SyntheticConfig, generate, record_settings
from data.synthetic.shapes import BASE_CLASSES, CLASSES
from data.synthetic.stats import VOC07_REFERENCE, SetStatistics, format_table, set_statistics

__all__ = [
    "BASE_CLASSES",
    "CLASSES",
    "DEFAULT_PRESET",
    "PRESETS",
    "SetStatistics",
    "SyntheticConfig",
    "VOC07_REFERENCE",
    "format_table",
    "generate",
    "record_settings",
    "set_statistics",
]
