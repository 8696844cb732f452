"""Training: the loss (:mod:`.losses`) and the paper's two-phase schedule with resumable checkpoints (:mod:`.loop`)."""
