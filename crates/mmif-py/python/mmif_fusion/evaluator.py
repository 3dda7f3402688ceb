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


class Evaluator:
    """Static methods as in CDDFuse's ``Evaluator``: ``EN(img)``, ``SD(img)``, ``SF(img)``,
    ``AG(img)`` on the fused image; ``MI``, ``MSE``, ``CC``, ``PSNR``, ``SCD``, ``VIFF``,
    ``Qabf``, ``SSIM`` on ``(image_F, image_A, image_B)``."""

    @staticmethod
    def EN(img):
        return _metric("EN", img, img, img)

    @staticmethod
    def SD(img):
        return _metric("SD", img, img, img)

    @staticmethod
    def SF(img):
        return _metric("SF", img, img, img)

    @staticmethod
    def AG(img):
        return _metric("AG", img, img, img)

    @staticmethod
    def MI(image_F, image_A, image_B):
        return _metric("MI", image_F, image_A, image_B)

    @staticmethod
    def MSE(image_F, image_A, image_B):
        return _metric("MSE", image_F, image_A, image_B)

    @staticmethod
    def CC(image_F, image_A, image_B):
        return _metric("CC", image_F, image_A, image_B)

    @staticmethod
    def PSNR(image_F, image_A, image_B):
        return _metric("PSNR", image_F, image_A, image_B)

    @staticmethod
    def SCD(image_F, image_A, image_B):
        return _metric("SCD", image_F, image_A, image_B)

    @staticmethod
    def VIFF(image_F, image_A, image_B):
        return _metric("VIF", image_F, image_A, image_B)

    @staticmethod
    def Qabf(image_F, image_A, image_B):
        return _metric("Qabf", image_F, image_A, image_B)

    @staticmethod
    def SSIM(image_F, image_A, image_B, data_range=2.0):
        return _metric("SSIM", image_F, image_A, image_B, ssim_data_range=data_range)
