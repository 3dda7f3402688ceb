"""mmif on numpy arrays: image fusion (CDDFuse, EMMA, FILM and weight-free methods) and the
standard fusion metrics, computed by the same Rust code as the ``mmif`` command.

>>> import mmif_fusion as mf
>>> fused = mf.fuse(ir, vis, task="ivf")                  # weight-free default of the task
>>> net = mf.Fuser("cddfuse", "CDDFuse_IVF.pth", task="ivf")   # load once, fuse many pairs
>>> mf.evaluate(ir, vis, net.fuse(ir, vis), preset="cddfuse")   # {'EN': ..., 'SD': ..., ...}

``from mmif_fusion import Evaluator`` replaces CDDFuse's ``from utils.Evaluator import Evaluator``.
"""

import os
from typing import Any, Optional, Union

import numpy as np

from ._mmif_fusion import Fuser, MmifError, __version__, gray, list_models
from . import metrics
from .metrics import evaluate, list_metrics, metric, preset_metrics
from .evaluator import Evaluator

__all__ = [
    "Evaluator",
    "Fuser",
    "MmifError",
    "evaluate",
    "fuse",
    "gray",
    "list_metrics",
    "list_models",
    "metric",
    "metrics",
    "preset_metrics",
]


def fuse(
    a: "np.ndarray",
    b: "np.ndarray",
    *,
    model: "Optional[str]" = None,
    weights: "Optional[Union[str, os.PathLike]]" = None,
    task: "Optional[str]" = None,
    text: "Optional[np.ndarray]" = None,
    dtype: str = "float32",
    **options: "Any",
) -> "np.ndarray":
    """Fuses one pair with ``model`` (see :class:`Fuser` for the options): ``a`` is the infrared,
    MRI, over-exposed or near-focused source, ``b`` the other. For many pairs with a network,
    build a :class:`Fuser` once instead (this loads the checkpoint on every call)."""
    return Fuser(model, weights, task=task, **options).fuse(a, b, text=text, dtype=dtype)
