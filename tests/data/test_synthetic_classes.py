"""The 20-class preset: 8 classes added after the 12 base ones, which every other set keeps drawing
exactly as before (masks, looks, class streams)."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace

import numpy as np
import pytest

from data.synthetic import BASE_CLASSES, CLASSES, PRESETS, SyntheticConfig, generate, record_settings
from data.synthetic.appearance import LOOK_NAMES, SHARED_LOOK, class_looks
from data.synthetic.generate import _class_stream
from data.synthetic.shapes import render
from data.voc import load_voc, read_classes

NEW = range(len(BASE_CLASSES), len(CLASSES))
# sha256 of the 12 base classes' masks below, computed with the code before the 8 classes were added:
# a change means every 12-class set draws other images (bump tools/make_synthetic.FORMAT_VERSION).
BASE_MASKS_SHA256 = "0c9b3c9462e77837663d9312ae99fbf913a6257e55f77a5aff3013479d7f3095"


def test_the_base_classes_come_first_and_draw_what_they_drew():
    assert len(BASE_CLASSES) == 12 and len(CLASSES) == 20 and CLASSES[:12] == BASE_CLASSES
    digest = hashlib.sha256()
    for k in range(len(BASE_CLASSES)):
        for kw in ({}, {"box_aspect": 1.7, "max_stretch": 1.6, "upright": 15.0}):
            mask = render(k, 70.0, np.random.default_rng([k, 7]), **kw)
            digest.update(np.asarray(mask.shape).tobytes() + mask.tobytes())
    assert digest.hexdigest() == BASE_MASKS_SHA256


def test_base_looks_keep_their_places_new_looks_come_after():
    base_shared = dict.fromkeys(SHARED_LOOK[c] for c in BASE_CLASSES)
    assert LOOK_NAMES[:18] == (*BASE_CLASSES, *base_shared)  # a look's place seeds it
    assert len(set(LOOK_NAMES)) == len(LOOK_NAMES) == 30


@pytest.mark.parametrize("class_id", NEW)
def test_each_new_class_has_its_own_look_and_one_shared_with_a_new_partner(class_id):
    own, shared = class_looks(class_id)
    partners = [k for k in range(len(CLASSES)) if k != class_id and class_looks(k)[1] == shared]
    assert len(partners) == 1 and partners[0] in NEW
    others = {look for k in range(len(CLASSES)) if k != class_id for look in class_looks(k)}
    assert own not in others and own != shared


def _centred(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w), bool)
    y, x = (h - mask.shape[0]) // 2, (w - mask.shape[1]) // 2
    out[y : y + mask.shape[0], x : x + mask.shape[1]] = mask > 127
    return out


def _iou_up_to_turns(a: np.ndarray, b: np.ndarray) -> float:
    """Highest IoU of (h, w) masks ``a`` and ``b``, centred on one canvas, over b's quarter turns and flips."""
    best = 0.0
    for k, flip in itertools.product(range(4), (False, True)):
        c = np.rot90(b[:, ::-1] if flip else b, k)
        h, w = max(a.shape[0], c.shape[0]), max(a.shape[1], c.shape[1])
        pa, pc = _centred(a, h, w), _centred(c, h, w)
        best = max(best, float((pa & pc).sum() / (pa | pc).sum()))
    return best


def test_new_masks_are_not_empty_and_differ_from_every_other_class():
    masks = [render(k, 64.0, np.random.default_rng(0), upright=0.0) for k in range(len(CLASSES))]
    for k in NEW:
        assert (masks[k] > 127).sum() > 0.2 * 64 * 64, CLASSES[k]
        for j in range(len(CLASSES)):
            if j != k:
                assert _iou_up_to_turns(masks[k], masks[j]) < 0.9, (CLASSES[k], CLASSES[j])


def test_only_the_20_class_preset_draws_the_new_classes():
    for name, cfg in PRESETS.items():
        stream = _class_stream(0, "trainval", 200, cfg.num_classes)
        assert set(stream) == set(range(len(cfg.classes)))
        assert cfg.classes == (CLASSES if name == "voc07_20" else BASE_CLASSES)
    assert PRESETS["voc07_20"] == replace(PRESETS["voc07"], num_classes=20)
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticConfig(num_classes=len(CLASSES) + 1)


def test_records_keep_12_class_presets_as_before_and_the_20_class_one_with_its_count():
    settings = {"num_classes": 12, "jpeg_quality": 90}
    assert record_settings(settings) == {"jpeg_quality": 90}  # what records kept before the setting
    assert record_settings({**settings, "num_classes": 20}) == {**settings, "num_classes": 20}


def test_a_voc07_20_set_uses_the_20_classes(tmp_path):
    generate(tmp_path, num_trainval=4, num_test=2, seed=0, cfg=PRESETS["voc07_20"])
    assert read_classes(tmp_path) == CLASSES
    labels = np.concatenate([r.labels for s in ("trainval", "test") for r in load_voc(tmp_path, s).records])
    assert labels.min() >= 0 and labels.max() < 20 and (labels >= 12).any()
