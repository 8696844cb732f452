"""The Extended U-Net of the paper, its ablations and the baselines (:func:`build_model`), their encoders, their one
output type, class priors, and the checkpoint store that saves and loads trained models.

``factory`` (build_model) -> ``unet`` (the fastai U-Nets, assembled from ``parts``) and ``baselines`` (smp); ``prior``
(class priors), ``outputs`` (:class:`ModelOutput`), ``encoders``, ``checkpoints``.
"""
from .checkpoints import load_model, read_checkpoint
from ..profiles import ENCODERS
from .encoders import RandomInitWarning
from .factory import MODEL_NAMES, build_model, count_parameters, model_splitter
from .outputs import ModelOutput
from .prior import make_class_prior
from .unet import PRIOR_MODELS, detach_branches, require_prior_input

__all__ = ["build_model", "MODEL_NAMES", "PRIOR_MODELS", "ENCODERS", "RandomInitWarning", "count_parameters",
           "model_splitter", "ModelOutput", "make_class_prior", "require_prior_input", "detach_branches",
           "load_model", "read_checkpoint"]
