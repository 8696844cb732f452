"""The paper's dataset refinement (section 4.1): person detection (:mod:`.persons`) and the iterative crop
(:mod:`.refine`)."""

__all__: list[str] = []  # the modules are the API: import them by name
