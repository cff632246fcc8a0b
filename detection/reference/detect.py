"""A split's detections by the reference Faster R-CNN, in our Detections format, timed per image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.models.detection import FasterRCNN

from data.images import record_image
from data.progress import track
from data.records import Detections, ImageRecord
from detection.reference.model import image_tensor, to_detections
from detection.runtime.stopwatch import Stopwatch


@torch.inference_mode()
def detect_records(model: FasterRCNN, records: Sequence[ImageRecord], device: torch.device,
                   progress: bool = True, sw: Stopwatch | None = None) -> dict[str, Detections]:
    """image_id -> Detections of every record, in the records' order.

    ``sw`` times each image's "detect" stage: the resize, the trunk, the RPN, the RoI head and the
    per-class NMS, everything after the image is decoded (proposals included: they are the RPN's).
    """
    model.to(device).eval()
    sw = sw or Stopwatch(device)
    detections = {}
    for record in track(records, desc="faster r-cnn test", show=progress):
        image = image_tensor(record_image(record)).to(device)
        with sw.stage("detect"):
            output = model([image])[0]
        sw.next_image()
        detections[record.image_id] = to_detections(output, record.size)
    return detections
