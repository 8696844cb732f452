"""Evaluation and inference: the metrics (:mod:`.metrics`), the one inference path (:mod:`.predictor`), test scores
of a trained model (:mod:`.scores`) and parsing a photo (:mod:`.parsing`)."""
