"""The Extended U-Net of the paper, its ablations and the baselines (:func:`build_model`), their encoders, and
the checkpoint store that saves and loads trained models."""
from .checkpoints import load_model, read_checkpoint
from .encoders import ENCODERS, RandomInitWarning
from .unet import MODEL_NAMES, PRIOR_MODELS, build_model, count_parameters, make_class_prior

__all__ = ["build_model", "MODEL_NAMES", "PRIOR_MODELS", "ENCODERS", "RandomInitWarning", "count_parameters",
           "make_class_prior", "load_model", "read_checkpoint"]
