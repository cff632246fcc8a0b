"""Training parts the pipeline runs: labelled windows, fc-only and end-to-end fine-tuning, and the
ZF-5 pre-training on object crops."""
