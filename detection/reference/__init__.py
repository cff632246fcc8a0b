"""The reference row: torchvision's Faster R-CNN (Ren et al. 2015) on our ImageNet MobileNetV2 trunk,
what a user would pick today, trained and scored on the same data as SPP-net and R-CNN.

  config.py  its settings (torchvision's references/detection recipe, cited key by key)
  model.py   the detector on our trunk, images and targets in, our Detections out
  train.py   its training, by the one SGD loop (detection.training.sgd) with its checkpoint
  detect.py  a split's detections and the test time per image
"""
