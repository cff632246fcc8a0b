"""SPP-net and R-CNN detection, in layers (lowest first; a module imports only from its own
sub-package and from those below it, tests/test_layers.py checks):

  runtime/         plumbing: torchrun's ranks, stopwatch, time / memory meter, config files
  models/          what is learned: conv trunks (conv5 at stride 16), spatial pyramid pooling,
                   the fc head, box regressors; shared by the detector and the classifier
  features/        windows -> pool5 vectors: conv5 maps and window projection (SPP-net), or a
                   warp and a trunk pass per window (R-CNN): the only part they differ in
  classification/  SPP-net as an image classifier (the paper's sec. 3)
  training/        labelled windows, fine-tuning, ZF-5 pre-training
  inference/       one image -> detections (fc, SVM scores, box regression, NMS)
  speed/           the SPP-net vs R-CNN timing loop and its report
  reference/       torchvision's Faster R-CNN on the same trunk: the reference row
  config.py        the config composing every stage's
  workdir.py       a work dir's layout and ``open_detector``, the one way to open a trained one
  pipeline/        training stages, a split's detections, sharding over ranks
"""
