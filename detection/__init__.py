"""SPP-net and R-CNN detection, in the order of the pipeline.

  models/      what is learned: conv trunks (conv5 at stride 16), the fc head, box regressors
  features/    windows -> pool5 vectors: conv5 maps, window projection, spatial pyramid pooling
               (SPP-net), or a warp and a trunk pass per window (R-CNN): the only part they differ in
  training/    labelled windows, fine-tuning, SVM mining, box regression, ZF-5 pre-training
  inference/   one image -> detections (fc, SVM scores, box regression, NMS); a split, cached
  speed/       stopwatch, the SPP-net vs R-CNN timing loop, its report
  config.py    the config composing every stage's; workdir.py: a work dir and ``open_detector``
"""
