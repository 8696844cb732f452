"""Inference without torch: an exported model's card (:mod:`.card`), what a class prior may be (:mod:`.prior`), the
ONNX runtime (:mod:`.runtime`) and the parsing path both backends share (:mod:`.parsing`). Above the data readers,
below the model code: ``models.export`` writes what this package reads, and ``evaluation`` adds the torch backend."""

__all__: list[str] = []  # the modules are the API: import them by name
