#!/usr/bin/env python3
"""Compares mmif's EMMA pseudo-sensor one-step result and PyTorch's float32 one with PyTorch in float64.

Documentation of issue 23, item 6; no test runs it. Inputs: the --analysis .npz of
tools/emma_onestep_fixtures.py and the tensors that
`MMIF_STEP_DUMP=dump.safetensors MMIF_FIXTURES=<set> cargo test --release -p mmif-train --test emma_step pseudo_sensor`
writes (`before/K`, `after/K`, `grad/K` = Adam's first moment / (1 - beta1)).

Per parameter, for float32 PyTorch ("pt") and mmif ("mm") against float64 PyTorch:
  gerr/rms   max |g - g64| over the tensor / rms(g64) (the float32 gradient's error),
  flips      elements whose step went the other way than float64's (|after - after64| > lr),
  dsum       sum(after) - sum(after64)
and the largest |g64| of an element that flipped. The last columns evaluate the test's bound
(`crates/mmif-train/tests/common/mod.rs::check_param`): k = uncertain elements of mmif
(|g| <= REL_GRAD_ERR * rms(g) or steep; a third argument overrides REL_GRAD_ERR), the bound
1e-5 + SIGMAS * 2 * lr * sqrt(k), and |sum(mm) - sum(pt)| / bound, |abs_sum(mm) - abs_sum(pt)| / bound;
the last line gives the worst of these and the worst of the same ratio between either float32
run and float64.

    python3 tools/emma_onestep_compare.py data/fixtures2-analysis.npz data/fixtures2-mmif.safetensors
"""
import sys

import numpy as np
from safetensors.numpy import load_file

LR = 1e-4
# Must match crates/mmif-train/tests/common/mod.rs.
REL_GRAD_ERR = 0.2
SIGMAS = 2.0
EPS = 1e-8


def main():
    global REL_GRAD_ERR
    if len(sys.argv) > 3:
        REL_GRAD_ERR = float(sys.argv[3])
    z = np.load(sys.argv[1])
    mm = load_file(sys.argv[2])
    keys = [k[len('before/'):] for k in z.files if k.startswith('before/')]
    print(f"{'parameter':22s} {'n':>8s} | {'pt gerr/rms':>11s} {'flips':>6s} {'dsum':>9s} | "
          f"{'mm gerr/rms':>11s} {'flips':>6s} {'dsum':>9s} {'max|g64|':>9s} | {'k':>7s} {'bound':>8s} {'sum/b':>6s} {'abs/b':>6s}")
    worst = (0.0, '')
    worst_truth = [(0.0, '')]
    for k in keys:
        g64 = z['f64/grad/' + k]
        a64 = z['f64/after/' + k]
        before = z['before/' + k].astype(np.float64)
        rms = np.sqrt(np.mean(g64 ** 2))
        row = []
        flipped = np.zeros(g64.shape, bool)
        afters = {}
        for tag, g, a in (('pt', z['f32/grad/' + k], z['f32/after/' + k]), ('mm', mm['grad/' + k], mm['after/' + k])):
            g = g.astype(np.float64).reshape(g64.shape)
            a = a.astype(np.float64).reshape(g64.shape)
            afters[tag] = a
            flip = np.abs(a - a64) > LR
            flipped |= flip
            row += [np.abs(g - g64).max() / max(rms, 1e-30), int(flip.sum()), a.sum() - a64.sum()]
        assert np.array_equal(mm['before/' + k].reshape(before.shape), before.astype(np.float32)), k
        gm = mm['grad/' + k].astype(np.float64)
        rms_mm = np.sqrt(np.mean(gm ** 2))
        unc = np.abs(gm) <= np.maximum(REL_GRAD_ERR * rms_mm, 100 * EPS)
        kk = int(unc.sum())
        bound = 1e-5 + SIGMAS * 2 * LR * np.sqrt(kk)
        ds = abs(afters['mm'].sum() - afters['pt'].sum()) / bound
        da = abs(np.abs(afters['mm']).sum() - np.abs(afters['pt']).sum()) / bound
        worst = max(worst, (max(ds, da), k))
        # The same bound between float32 PyTorch and the truth, and between mmif and the truth.
        for a in (afters['pt'], afters['mm']):
            truth = max(abs(a.sum() - a64.sum()), abs(np.abs(a).sum() - np.abs(a64).sum())) / bound
            worst_truth[0] = max(worst_truth[0], (truth, k))
        mg = np.abs(g64[flipped]).max() if flipped.any() else 0.0
        print(f"{k:22s} {g64.size:8d} | {row[0]:11.2e} {row[1]:6d} {row[2]:9.1e} | {row[3]:11.2e} {row[4]:6d} {row[5]:9.1e} "
              f"{mg:9.1e} | {kk:7d} {bound:8.1e} {ds:6.3f} {da:6.3f}")
    print(f'rel {REL_GRAD_ERR}: worst |mmif - PyTorch f32| / bound: {worst[0]:.3f} ({worst[1]}); '
          f'worst |float32 - float64| / bound: {worst_truth[0][0]:.3f} ({worst_truth[0][1]})')


if __name__ == '__main__':
    main()
