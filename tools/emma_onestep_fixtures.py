#!/usr/bin/env python3
"""Generates a second set of EMMA pseudo-sensor one-step fixtures with other seeds (issue 23, item 6).

Documentation of how the check was made; no test runs it. It writes, into --out, the files that
`crates/mmif-train/tests/emma_step.rs::pseudo_sensor_step_matches_official` reads, in the layout of
the shared fixtures (see their README.md, sections 1 and 4):

    forward_meta.json   models.emma_unet5_ai / emma_unet5_av: manifest, seed, gain, fill_sum
    train_batch_ir.npy, train_batch_vis.npy   2x1x64x64 crops of EMMA's test images
    train_meta.json     emma_pseudo_sensor: the official UNet5 step (train mode, Adam lr 1e-4,
                        MSE(A(0.5*(ir+vis)), ir)) in float32

and, with --analysis FILE.npz, every parameter before and after the step and every gradient, of the
float32 run and of the same step in float64 (`.double()`), for comparing an implementation's
parameters after the step with the float64 truth (tools/emma_onestep_compare.py).

The network is the official code's own `nets/Unet5.py` (clone github.com/Zhaozixiang1228/MMIF-EMMA
into data/ and pass it as --emma); the images are read as its test.py reads them
(`cv2.imread` -> BGR2GRAY -> round -> /255). The parameter fill is the shared fixtures'
`prng_reference.py`.

    python3 tools/emma_onestep_fixtures.py --emma data/MMIF-EMMA --out data/fixtures2 \
        --seed 13 --crop-seed 13 --analysis data/fixtures2-analysis.npz
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
import torch
import torch.nn.functional as F

LR = 1e-4


def read_gray(path):
    """The official test.py's reading: BGR float32 -> GRAY, rounded, /255."""
    bgr = cv2.imread(path).astype('float32')
    return (np.round(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)) / 255).astype(np.float32)


def batch(emma, crop_seed, n=2, size=64):
    """`n` random size x size crops (same place in both modalities) of EMMA's test images."""
    rng = np.random.default_rng(crop_seed)
    names = sorted(os.listdir(os.path.join(emma, 'test_img', 'ir')))
    ir, vis = [], []
    for _ in range(n):
        name = names[rng.integers(len(names))]
        a = read_gray(os.path.join(emma, 'test_img', 'ir', name))
        b = read_gray(os.path.join(emma, 'test_img', 'vi', name))
        y = int(rng.integers(a.shape[0] - size + 1))
        x = int(rng.integers(a.shape[1] - size + 1))
        ir.append(a[y:y + size, x:x + size])
        vis.append(b[y:y + size, x:x + size])
    return (np.stack(ir)[:, None].copy(), np.stack(vis)[:, None].copy())


def manifest(net):
    return [{'group': '', 'keys': [[k, list(t.shape), str(t.dtype).replace('torch.', '')]
                                   for k, t in net.state_dict().items()]}]


def filled(unet5, prng, seed, gain):
    net = unet5()
    sd = net.state_dict()
    prng.fill_state_dict(sd, seed, gain=gain)
    net.load_state_dict(sd)
    fill_sum = 0.0
    for t, (k, v) in enumerate(sd.items()):
        if prng.fill_value(k, tuple(v.shape), seed, t, gain) is not None:
            fill_sum += float(v.double().sum())
    return net, fill_sum


def step(net, ir, vis, dtype):
    """One official train_AiAv.py step; returns the loss, the gradients and the optimizer."""
    net = net.to(dtype)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=LR, weight_decay=0)
    x = 0.5 * (torch.from_numpy(ir) + torch.from_numpy(vis))
    target = torch.from_numpy(ir)
    opt.zero_grad()
    loss = F.mse_loss(net(x.to(dtype)), target.to(dtype))
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in net.named_parameters()}
    opt.step()
    return float(loss.detach()), grads


def samples(n):
    return sorted({0, n // 3, 2 * n // 3, n - 1})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--emma', required=True, help='clone of the official MMIF-EMMA repository')
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int, required=True, help='fill seed of the trained sensor (Ai)')
    ap.add_argument('--crop-seed', type=int, help='seed of the random crops')
    ap.add_argument('--batch-from', help="take train_batch_{ir,vis}.npy from this folder instead of cropping "
                    "(with the shared fixtures' folder and --seed 3 it reproduces their entry)")
    ap.add_argument('--gain', type=float, default=1.6)
    ap.add_argument('--fixtures', default='../shared/fixtures', help='for prng_reference.py')
    ap.add_argument('--analysis', help='write float32 and float64 parameters and gradients here (.npz)')
    args = ap.parse_args()

    sys.path.insert(0, args.emma)
    sys.path.insert(0, args.fixtures)
    from nets.Unet5 import UNet5
    import prng_reference as prng

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    if args.batch_from:
        ir, vis = (np.load(os.path.join(args.batch_from, f'train_batch_{m}.npy')) for m in ('ir', 'vis'))
    else:
        ir, vis = batch(args.emma, args.crop_seed)
    np.save(os.path.join(args.out, 'train_batch_ir.npy'), ir)
    np.save(os.path.join(args.out, 'train_batch_vis.npy'), vis)

    models = {}
    for name, seed in (('emma_unet5_ai', args.seed), ('emma_unet5_av', args.seed + 1)):
        net, fill_sum = filled(UNet5, prng, seed, args.gain)
        models[name] = {'manifest': manifest(net), 'seed': seed, 'gain': args.gain, 'fill_sum': fill_sum}
    with open(os.path.join(args.out, 'forward_meta.json'), 'w') as f:
        json.dump({'models': models, 'stats': {}}, f)

    runs = {}
    for dtype in (torch.float32, torch.float64):
        net, _ = filled(UNet5, prng, args.seed, args.gain)
        before = {k: p.detach().clone() for k, p in net.named_parameters()}
        loss, grads = step(net, ir, vis, dtype)
        runs[dtype] = (net, before, loss, grads)

    net, before, loss, grads = runs[torch.float32]
    grad_norms = {k: float(g.double().norm()) for k, g in grads.items()}
    after = []
    for k, p in net.named_parameters():
        v = p.detach().double().flatten()
        after.append({'name': k, 'sum': float(v.sum()), 'abs_sum': float(v.abs().sum()),
                      'samples': [[i, float(v[i])] for i in samples(v.numel())],
                      'grad_norm': grad_norms[k]})
    stats = {}
    for k, b in net.state_dict().items():
        if k.endswith('running_mean') or k.endswith('running_var'):
            v = b.double().flatten()
            stats[k] = [float(v.sum()), float(v[0])]
    entry = {'input': '0.5*(ir+vis)', 'target': 'ir', 'losses': {'loss': loss}, 'grad_norms': grad_norms,
             'params_after_step': after, 'bn_running_stats_after_step_sum_first': stats}
    with open(os.path.join(args.out, 'train_meta.json'), 'w') as f:
        json.dump({'emma_pseudo_sensor': entry}, f)

    if args.analysis:
        arrays = {}
        for tag, dtype in (('f32', torch.float32), ('f64', torch.float64)):
            net, before, loss, grads = runs[dtype]
            arrays[f'{tag}/loss'] = np.array(loss)
            for k, p in net.named_parameters():
                arrays[f'{tag}/after/{k}'] = p.detach().numpy().copy()
                arrays[f'{tag}/grad/{k}'] = grads[k].numpy().copy()
                arrays[f'before/{k}'] = before[k].float().numpy().copy()
        np.savez(args.analysis, **arrays)
    print(f'{args.out}: loss f32 {runs[torch.float32][2]!r}, f64 {runs[torch.float64][2]!r}')


if __name__ == '__main__':
    main()
