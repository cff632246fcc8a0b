"""The detection read-out: score threshold, per-class NMS, the cap, clipping."""

import numpy as np
import pytest
import torch

from detection.inference.detect import DetectConfig, _select


def test_select_nms_per_class_threshold_and_cap():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    per_class = boxes[:, None, :].repeat(1, 2, 1)  # (R, K=2, 4)
    scores = torch.tensor([[0.9, 0.8], [0.7, -2.0], [-3.0, 0.1]])
    det = _select(per_class, scores, (100, 100), DetectConfig(score_threshold=-1.5, max_per_image=10))
    # class 0: boxes 0 and 1 overlap (IoU .68 > .3): only 0 survives; box 2 is below threshold.
    # class 1: box 0 (.8) and box 2 (.1); box 1 is below threshold.
    assert sorted((int(k), round(float(s), 3)) for k, s in zip(det.labels, det.scores)) == [(0, 0.9), (1, 0.1), (1, 0.8)]
    assert det.scores.tolist() == sorted(det.scores.tolist(), reverse=True)
    capped = _select(per_class, scores, (100, 100), DetectConfig(max_per_image=1))
    assert len(capped) == 1 and capped.scores[0] == np.float32(0.9)


def test_select_clips_to_the_image():
    per_class = torch.tensor([[[-5.0, -5.0, 150.0, 60.0]]])
    det = _select(per_class, torch.tensor([[1.0]]), (50, 100), DetectConfig())
    assert det.boxes.tolist() == [[0.0, 0.0, 100.0, 50.0]]



class _Source:
    """pool5 vectors fixed per window, and windows 0 and 1 pooled to one shared vector."""

    def __init__(self, vectors: torch.Tensor) -> None:
        self.vectors = vectors

    def pool5_shared(self, record, boxes, sw=None):
        inverse = torch.arange(len(boxes))
        inverse[1] = 0
        return self.vectors, inverse


def test_detect_image_is_fc_then_svm_scores_then_per_class_nms_of_the_windows():
    """The production read-out against the obvious one: per class, the windows scoring above the
    threshold, torchvision's NMS, best first, the cap; an untrained class never appears."""
    from pathlib import Path

    from torchvision.ops import nms

    from data.records import ImageRecord
    from detection.inference.detect import TrainedModel, detect_image
    from detection.models.head import FcHead
    from svm.model import LinearSVMs

    gen = torch.Generator().manual_seed(0)
    r, k = 40, 3
    xy = torch.rand(r, 2, generator=gen) * 150
    boxes = torch.cat([xy, xy + 20 + torch.rand(r, 2, generator=gen) * 80], 1)
    boxes[1] = boxes[0]
    vectors = torch.randn(r, 8, generator=gen)
    torch.manual_seed(1)
    head = FcHead(8, 6, 6, k, dropout=0.0).eval()
    svms = LinearSVMs(np.random.default_rng(4).normal(size=(6, k)).astype(np.float32), np.zeros(k, np.float32), 1.0)
    model = TrainedModel(head, "fc7", svms, None, untrained=(2,))
    cfg = DetectConfig(score_threshold=0.0, max_per_image=12, bbox_reg=False)
    record = ImageRecord.unannotated(Path("im.jpg"), (200, 220))
    det = detect_image(record, boxes.numpy(), _Source(vectors), model, cfg)

    index = torch.arange(r)
    index[1] = 0
    with torch.no_grad():
        scores = svms.score(head.features(vectors, "fc7"))[index]  # (R, K)
    clipped = torch.min(boxes.clamp(min=0), torch.tensor([220.0, 200, 220, 200]))  # clipped, then NMS
    want = []
    for c in range(k - 1):  # class 2 is untrained
        above = (scores[:, c] > 0).nonzero().squeeze(1)
        kept = above[nms(clipped[above], scores[above, c], 0.3)]
        want += [(float(scores[i, c]), c, clipped[i].tolist()) for i in kept]
    assert len(want) > 12 and {c for _, c, _ in want} == {0, 1}  # both classes pass; the cap will bite
    want = sorted(want, key=lambda t: -t[0])[:12]
    assert [int(c) for c in det.labels] == [c for _, c, _ in want]
    assert np.allclose(det.scores, [s for s, _, _ in want])
    assert np.allclose(det.boxes, [b for *_, b in want])


@pytest.mark.slow
def test_an_image_in_memory_gets_the_detections_of_its_file(tiny_voc, tiny_workdir):
    """The Python API's ImageRecord.from_array: the same pixels, the same detections as from the file."""
    from data.images import read_image
    from data.records import ImageRecord
    from detection.inference.detect import detect_image
    from detection.workdir import open_detector

    detector = open_detector(tiny_workdir, torch.device("cpu"))
    path = sorted((tiny_voc / "JPEGImages").glob("test_*.jpg"))[0]
    image = read_image(path)
    boxes = torch.tensor([[10.0, 10.0, 120.0, 90.0], [0.0, 0.0, 60.0, 60.0], [40.0, 30.0, 200.0, 180.0]])
    from_file = detect_image(ImageRecord.unannotated(path, image.shape[:2]), boxes, detector.source, detector.model,
                             detector.cfg.test)
    in_memory = detect_image(ImageRecord.from_array(image), boxes, detector.source, detector.model, detector.cfg.test)
    assert len(from_file.scores) and np.array_equal(from_file.scores, in_memory.scores)
    assert np.array_equal(from_file.boxes, in_memory.boxes) and np.array_equal(from_file.labels, in_memory.labels)
    with pytest.raises(ValueError, match="uint8 RGB"):
        ImageRecord.from_array(image.astype(np.float32))
