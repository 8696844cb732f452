"""What the book shows, one module per chapter (:mod:`.refinement`, :mod:`.architecture`, :mod:`.training`,
:mod:`.baselines`, :mod:`.ablations`, :mod:`.confusion`, :mod:`.qualitative`, :mod:`.beyond`, :mod:`.intro` and its
:mod:`.verdicts`), on a run folder (:mod:`.run`), with the shared table helpers (:mod:`.tables`), the plan of the
book's trainings (:mod:`.plan`) and the plots (:mod:`.viz`)."""

__all__: list[str] = []  # the modules are the API: import them by name
