"""Training: the loss (:mod:`.losses`) and the paper's two-phase schedule with resumable checkpoints (:mod:`.loop`)."""

__all__: list[str] = []  # the modules are the API: import them by name
