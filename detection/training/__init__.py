"""Training parts the pipeline runs: labelled windows, the one SGD loop, fc-only and end-to-end
fine-tuning."""
