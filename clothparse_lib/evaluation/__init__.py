"""Evaluation and inference: the one inference path (:mod:`.predictor`), test scores of a trained model
(:mod:`.scores`, with the metrics of :mod:`clothparse_lib.metrics`) and parsing a photo (:mod:`.parsing`)."""

__all__: list[str] = []  # the modules are the API: import them by name
