"""A drop-in for CDDFuse's ``utils/Evaluator.py``: the same static methods, names and argument
order (fused image first), the same numbers, computed by mmif's Rust metrics.

Replace ``from utils.Evaluator import Evaluator`` by ``from mmif_fusion import Evaluator``.

Differences: inputs must be 2-D numpy arrays (as ``image_read_cv2(path, 'GRAY')`` returns them);
a wrong type or shape raises ``TypeError``/``ValueError``/``MmifError`` rather than
``AssertionError``; ``SSIM`` takes scikit-image's ``data_range`` as an optional argument,
defaulting to 2 — what the CDDFuse and EMMA tables used (old scikit-image inferred 2 for float
images; current versions refuse float images without it). Pass ``data_range=255`` for FILM's.
"""

from ._mmif_fusion import metric as _metric

__all__ = ["Evaluator"]


def _of_fused(name):
    """A metric of the fused image alone, as ``Evaluator.<name>(img)``."""

    def metric(img):
        return _metric(name, img, img, img)

    metric.__name__ = metric.__qualname__ = name
    return staticmethod(metric)


def _of_triple(name, metric_name=None):
    """A metric of the fused image against both sources, as ``Evaluator.<name>(image_F, image_A, image_B)``."""

    def metric(image_F, image_A, image_B):
        return _metric(metric_name or name, image_F, image_A, image_B)

    metric.__name__ = metric.__qualname__ = name
    return staticmethod(metric)


class Evaluator:
    """Static methods as in CDDFuse's ``Evaluator``: ``EN(img)``, ``SD(img)``, ``SF(img)``,
    ``AG(img)`` on the fused image; ``MI``, ``MSE``, ``CC``, ``PSNR``, ``SCD``, ``VIFF``,
    ``Qabf``, ``SSIM`` on ``(image_F, image_A, image_B)``."""

    EN = _of_fused("EN")
    SD = _of_fused("SD")
    SF = _of_fused("SF")
    AG = _of_fused("AG")
    MI = _of_triple("MI")
    MSE = _of_triple("MSE")
    CC = _of_triple("CC")
    PSNR = _of_triple("PSNR")
    SCD = _of_triple("SCD")
    VIFF = _of_triple("VIFF", "VIF")
    Qabf = _of_triple("Qabf")

    @staticmethod
    def SSIM(image_F, image_A, image_B, data_range=2.0):
        return _metric("SSIM", image_F, image_A, image_B, ssim_data_range=data_range)
