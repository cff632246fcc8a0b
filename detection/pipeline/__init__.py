"""The top of the detector: the stages that turn a dataset into a trained work dir (``train``),
a split into cached detections (``split``), both sharded over torchrun's ranks (``sharded``), and
the checks that read a work dir back (``bbox_check``)."""
