"""The reference Faster R-CNN: built on our trunk, our box convention in and out, training lowers the
loss, and an interrupted + resumed training ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torchvision.ops.misc import FrozenBatchNorm2d

from data.records import ImageRecord
from data.voc import load_voc
from detection.models.backbones import build_trunk
from detection.models.dilated_conv import PhaseDilatedConv2d
from detection.reference import train as train_module
from detection.reference.config import FasterRCNNConfig
from detection.reference.detect import detect_records
from detection.reference.model import build_faster_rcnn, to_detections, training_pair
from detection.reference.train import train_faster_rcnn

TINY = FasterRCNNConfig(min_size=64, max_size=96, iterations=4, rois_per_image=32, box_score_thresh=0.0)


def test_the_detector_stands_on_our_imagenet_trunk_with_torchvisions_frozen_stages():
    model = build_faster_rcnn(3, TINY)
    trunk, _ = build_trunk("mobilenet_v2", pretrained=True)
    ours = model.backbone.state_dict()
    for key, value in trunk.state_dict().items():
        if not key.endswith("num_batches_tracked"):  # FrozenBatchNorm2d keeps no counter
            assert torch.equal(ours[key], value), key
    assert model.backbone.out_channels == 320 and model.roi_heads.box_predictor.cls_score.out_features == 4
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in model.backbone.modules()) > 0
    assert sum(isinstance(m, PhaseDilatedConv2d) for m in model.backbone.modules()) == 4
    trained = [i for i, block in enumerate(model.backbone) if any(p.requires_grad for p in block.parameters())]
    assert trained == list(range(7, 18))  # torchvision's trainable_backbone_layers=3: stages from block 7
    again = build_faster_rcnn(3, TINY)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_a_forward_on_a_tiny_image_gives_our_detections_in_our_box_convention():
    model = build_faster_rcnn(3, TINY).eval()
    image = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    record = ImageRecord.from_array(image)
    dets = detect_records(model, [record], torch.device("cpu"), progress=False)["image"]
    assert len(dets) > 0 and dets.boxes.shape == (len(dets), 4) and dets.boxes.dtype == np.float32
    assert (dets.boxes[:, 0] >= 0).all() and (dets.boxes[:, 2] <= 80).all() and (dets.boxes[:, 3] <= 48).all()
    assert (dets.boxes[:, 2] >= dets.boxes[:, 0]).all() and (dets.boxes[:, 3] >= dets.boxes[:, 1]).all()
    assert set(dets.labels.tolist()) <= {0, 1, 2} and dets.labels.dtype == np.int64


def test_torchvision_labels_shift_to_our_class_ids_and_boxes_are_clipped():
    output = {"boxes": torch.tensor([[-2.0, 1.0, 30.0, 12.0]]), "scores": torch.tensor([0.9]),
              "labels": torch.tensor([1])}
    dets = to_detections(output, (10, 20))
    assert dets.boxes.tolist() == [[0.0, 1.0, 20.0, 10.0]] and dets.labels.tolist() == [0]


def test_a_training_pair_is_mirrored_and_leaves_difficult_objects_out():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :5] = 255
    record = dataclasses.replace(ImageRecord.from_array(image), boxes=np.array([[0, 1, 5, 9], [2, 2, 4, 4]], np.float32),
                                 labels=np.array([2, 0]), difficult=np.array([False, True]))
    x, target = training_pair(record, flip=True, use_difficult=False)
    assert x.shape == (3, 10, 20) and x[:, :, 15:].min() == 1.0 and x[:, :, :15].max() == 0.0
    assert target["boxes"].tolist() == [[15.0, 1.0, 20.0, 9.0]] and target["labels"].tolist() == [3]
    _, all_objects = training_pair(record, flip=False, use_difficult=True)
    assert all_objects["labels"].tolist() == [3, 1]


def _batch_loss(model, records, seed: int = 0) -> float:
    """The summed training losses on ``records`` (no flips), the sampling drawn from ``seed``."""
    model.train()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pairs = [training_pair(r, False, False) for r in records]
        return float(sum(model([x for x, _ in pairs], [t for _, t in pairs]).values()))


@pytest.mark.slow
def test_a_few_steps_lower_the_loss_on_the_tiny_set(tiny_voc):
    records = list(load_voc(tiny_voc, "trainval").records)
    cfg = dataclasses.replace(TINY, min_size=96, max_size=160, iterations=8, lr=0.02)
    model = build_faster_rcnn(12, cfg)
    before = _batch_loss(model, records[:4])
    steps = train_faster_rcnn(model, records, cfg, torch.device("cpu"), None, progress=False)
    assert len(steps.losses) == 8 and len(steps.seconds) == 8
    after = _batch_loss(model, records[:4])
    assert after < 0.9 * before, (before, after)


@pytest.mark.slow
def test_an_interrupted_and_resumed_training_is_bit_identical_to_an_uninterrupted_one(tiny_voc, tmp_path, monkeypatch):
    records = list(load_voc(tiny_voc, "trainval").records)
    device = torch.device("cpu")
    whole = build_faster_rcnn(12, TINY)
    train_faster_rcnn(whole, records, TINY, device, tmp_path / "whole.pt", progress=False, checkpoint_every=2)

    real_step = train_module.detector_step

    def stopping_step(*args):  # the 3rd step is interrupted, after the checkpoint of step 2
        step, calls = real_step(*args), []

        def stop_at_three(rng):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return step(rng)

        return stop_at_three

    checkpoint = tmp_path / "resumed.pt"
    monkeypatch.setattr(train_module, "detector_step", stopping_step)
    with pytest.raises(KeyboardInterrupt):
        train_faster_rcnn(build_faster_rcnn(12, TINY), records, TINY, device, checkpoint, progress=False,
                          checkpoint_every=2)
    monkeypatch.setattr(train_module, "detector_step", real_step)
    torch.manual_seed(123)  # whatever the process drew since, the checkpoint's streams take over
    resumed = build_faster_rcnn(12, TINY)
    steps = train_faster_rcnn(resumed, records, TINY, device, checkpoint, progress=False, checkpoint_every=2)
    assert len(steps.losses) == 2  # steps 3 and 4
    for (key, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), key
