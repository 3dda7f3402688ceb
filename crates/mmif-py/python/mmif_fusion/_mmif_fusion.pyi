"""Type stubs of the native module (``mmif_fusion._mmif_fusion``)."""

from os import PathLike
from typing import Dict, List, Literal, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

ImageArray = Union[npt.NDArray[np.uint8], npt.NDArray[np.uint16], npt.NDArray[np.float32]]
GrayArray = Union[ImageArray, npt.NDArray[np.float64]]
Task = Literal["ivf", "mif", "mef", "mff", "generic"]

class MmifError(ValueError):
    """An error reported by mmif, with the message the ``mmif`` command prints."""

class Fuser:
    """A model loaded once, fusing many pairs.

    ``model``: a network (``cddfuse``, ``emma``, ``film``) or a weight-free method (``gff``,
    ``hmsd_gf``, ``weighted:0.3``, …; ``list_models()``); ``None`` picks ``mmif fuse``'s default
    for the task. ``weights``: the network's checkpoint (official ``.pth``, Jittor ``.pkl`` or
    ``.safetensors``). ``task`` names the sources, which decides how a network maps them to its
    inputs (as the official test scripts; CDDFuse's residual, EMMA's sides). ``raw`` skips the
    official min-max normalisation of network outputs; ``gray`` drops the colour. ``color``
    (weight-free methods, colour sources): ``"luma"`` (default) fuses the gray images and keeps the
    colour source's chroma, ``"channels"`` fuses the RGB channels as VIFB's MATLAB code does
    (jointly for ``ifevip`` and ``gtf``), as ``mmif fuse --color``. ``residual``
    (CDDFuse: ``vis``, ``sum``, ``none``), ``tiling``/``tile``/``overlap`` (EMMA), ``bands`` (CDDFuse:
    ``auto``, ``off``, ``on`` or a number of rows), ``weight``
    (``weighted``), ``levels`` (``lp``, ``dwt``) and ``**params`` (a weight-free method's
    ``--param KEY=VALUE``) are ``mmif fuse``'s options.
    """

    def __init__(
        self,
        model: Optional[str] = None,
        weights: Optional[Union[str, PathLike]] = None,
        *,
        task: Optional[Task] = None,
        raw: bool = False,
        gray: bool = False,
        color: Optional[Literal["luma", "channels"]] = None,
        residual: Optional[Literal["vis", "sum", "none"]] = None,
        tiling: Optional[Literal["official", "pad", "tile"]] = None,
        tile: Optional[int] = None,
        overlap: Optional[int] = None,
        bands: Optional[str] = None,
        weight: Optional[float] = None,
        levels: Optional[int] = None,
        **params: Union[int, float, str],
    ) -> None: ...
    def fuse(
        self,
        a: ImageArray,
        b: ImageArray,
        *,
        text: Optional[npt.NDArray[np.float32]] = None,
        dtype: Literal["float32", "uint8"] = "float32",
        memory_check: bool = True,
    ) -> np.ndarray:
        """Fuses source ``a`` (infrared, MRI, over-exposed, near-focused) with ``b``. Sources are
        H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA) arrays: uint8, uint16 (scaled to 0..255) or
        float32 in [0, 1]. Returns float32 in [0, 1] (H×W, or H×W×3 RGB when a source is in
        colour and ``gray`` is off) — ``mmif fuse -o out.npy`` — or, with ``dtype="uint8"``, the
        pixels of ``mmif fuse -o out.png``. ``text``: FILM's T×768 text features. A network
        first compares its estimated peak memory for this size with the memory available and
        raises ``MmifError`` naming the option that bounds it; ``memory_check=False`` runs anyway."""
    @property
    def model(self) -> str: ...

def metric(
    name: str, fused: GrayArray, a: GrayArray, b: GrayArray, *, ssim_data_range: Optional[float] = None
) -> float:
    """One metric of ``mmif eval`` (``list_metrics()``)."""

def evaluate(
    a: GrayArray,
    b: GrayArray,
    fused: GrayArray,
    *,
    preset: Optional[Literal["cddfuse", "emma", "film", "vifb"]] = None,
    metrics: Optional[Sequence[str]] = None,
    ssim_data_range: Optional[float] = None,
) -> Dict[str, float]:
    """The metrics of a preset (default ``cddfuse``) or a list, in order, as ``mmif eval``."""

def list_metrics() -> List[str]: ...
def preset_metrics(preset: str) -> List[str]: ...
def list_models() -> List[str]: ...
def gray(image: ImageArray) -> npt.NDArray[np.float32]:
    """An image read as ``mmif eval`` and ``image_read_cv2(path, 'GRAY')`` read files (RGB order)."""
