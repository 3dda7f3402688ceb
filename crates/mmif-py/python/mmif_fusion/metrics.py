"""The metrics of ``mmif eval`` on arrays: the official Evaluator's (EN SD SF AG MI MSE CC PSNR
SCD VIF Qabf SSIM, as CDDFuse's ``utils/Evaluator.py`` computes them) and the MATLAB toolkits'
(``vifb.*``). Gray images are H×W arrays on the 0..255 scale (uint8, uint16, float32 or
float64, as ``image_read_cv2(path, 'GRAY')`` gives them); the ``vifb.*`` metrics also read
uint8 H×W×3 RGB images as MATLAB's ``imread`` does.
"""

from ._mmif_fusion import evaluate, list_metrics, metric, preset_metrics

__all__ = ["evaluate", "list_metrics", "metric", "preset_metrics"]
