"""Evaluation and inference: the metrics (:mod:`.metrics`), test scores of a trained model (:mod:`.scores`) and
parsing a photo (:mod:`.parsing`)."""
