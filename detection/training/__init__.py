"""Training a detector stage by stage: labelled windows, fine-tuning, SVM mining, box regression,
and the ZF-5 pre-training that stands in for ImageNet."""
