"""Times CDDFuse's official `utils/Evaluator.py` against `mmif_fusion.Evaluator` in one process,
on the eight metrics of CDDFuse's `test_IVF.py` (EN SD SF MI SCD VIF Qabf SSIM), over every pair
of a folder, alternating the two, and checks that they agree.

    python bench_evaluator.py CDDFUSE_REPO FUSED_DIR [--rounds 3]

CDDFUSE_REPO is a checkout of Zhaozixiang1228/MMIF-CDDFuse (its `utils/Evaluator.py` and
`test_img/TNO/{ir,vi}`); FUSED_DIR holds one fused `<stem>.png` per pair (e.g. from
`mmif fuse -m gff --ir-dir …/ir --vis-dir …/vi --out-dir FUSED_DIR`). Needs opencv-python,
scikit-image, scikit-learn and scipy for the official code. Current scikit-image refuses float
images without `data_range`; the official SSIM is run with `data_range=2`, the value old
scikit-image inferred (and the CDDFuse tables used).
"""

import argparse
import functools
import os
import statistics
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("repo")
    ap.add_argument("fused")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    sys.path.insert(0, args.repo)
    from utils import Evaluator as official_module
    from skimage.metrics import structural_similarity

    official_module.ssim = functools.partial(structural_similarity, data_range=2)
    Official = official_module.Evaluator
    read = official_module.image_read_cv2
    from mmif_fusion import Evaluator as Mmif

    folder = os.path.join(args.repo, "test_img", "TNO")
    names = sorted(os.listdir(os.path.join(folder, "ir")))
    images = [
        (read(os.path.join(folder, "ir", n), "GRAY"), read(os.path.join(folder, "vi", n), "GRAY"),
         read(os.path.join(args.fused, n.split(".")[0] + ".png"), "GRAY"))
        for n in names
    ]

    def run(E):
        out = np.zeros(8)
        for ir, vi, fi in images:
            out += np.array([E.EN(fi), E.SD(fi), E.SF(fi), E.MI(fi, ir, vi), E.SCD(fi, ir, vi),
                             E.VIFF(fi, ir, vi), E.Qabf(fi, ir, vi), E.SSIM(fi, ir, vi)])
        return out / len(images)

    times = {"official": [], "mmif": []}
    results = {}
    for _ in range(args.rounds):
        for name, E in (("official", Official), ("mmif", Mmif)):
            t = time.perf_counter()
            results[name] = run(E)
            times[name].append(time.perf_counter() - t)
    rel = np.abs(results["mmif"] - results["official"]) / np.abs(results["official"])
    print(f"{len(images)} pairs, 8 metrics, {args.rounds} alternating rounds; load {os.getloadavg()[0]:.2f}")
    for name, ts in times.items():
        print(f"{name:>8}: median {statistics.median(ts):.3f} s  (min {min(ts):.3f}, max {max(ts):.3f})")
    ratio = statistics.median(times["official"]) / statistics.median(times["mmif"])
    print(f"ratio of medians: {ratio:.1f}x; max relative difference of the means: {rel.max():.2e}")
    print("means (EN SD SF MI SCD VIF Qabf SSIM):", np.round(results["mmif"], 4))


if __name__ == "__main__":
    main()
