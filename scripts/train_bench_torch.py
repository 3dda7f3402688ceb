#!/usr/bin/env python3
"""Times training steps of the official PyTorch code (one procedure per process), for
scripts/train_bench.py.

The networks, losses and optimiser settings are the official repositories' own modules
(`net.py`/`utils/loss.py` of MMIF-CDDFuse, `nets/` and `utils.py` of MMIF-EMMA, `net/Film.py`
and `utils/lossfun.py` of IF-FILM, cloned into --official); the step is their train scripts'
loop body, on the CPU with `torch.set_num_threads(--threads)`, without `nn.DataParallel` (a plain
wrapper without GPUs). Inputs are uniform random tensors of the batch shape (step times do not
depend on the values); FILM's text features are zeros of shape (B, 149, 768).

Prints one JSON line: {"procedure", "batch", "size", "step_seconds": [...], "torch": version}.

    python3 scripts/train_bench_torch.py --procedure cddfuse1 --official data --batch 2 --size 64 --steps 3
"""
import argparse
import json
import os
import sys
import time


def timm_stand_in():
    """CDDFuse's `net.py` and FILM's `net/restormer.py` import `DropPath, to_2tuple, trunc_normal_`
    from timm, then define their own `DropPath` and use neither of the others. Where timm is not
    installed (it needs torchvision, which may not exist for the installed torch), register a
    module with those names that fail if ever called, so the official files import unchanged."""
    try:
        import timm.models.layers  # noqa: F401
        return
    except ImportError:
        pass
    import types

    def unused(name):
        def fail(*_args, **_kwargs):
            raise RuntimeError(f"timm.{name} is not installed, and the official code was not expected to call it")
        return fail

    layers = types.ModuleType("timm.models.layers")
    for name in ("DropPath", "to_2tuple", "trunc_normal_"):
        setattr(layers, name, unused(name))
    timm, models = types.ModuleType("timm"), types.ModuleType("timm.models")
    timm.models, models.layers = models, layers
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers})


def cpu_patches():
    """The patches the official code needs on a CPU with current kornia, and no others: `.cuda()`
    (CDDFuse's Sobel loss moves its kernels there) returns the tensor itself, and `kornia.rotate`
    (EMMA's transform; kornia 0.6 moved it) is `kornia.geometry.transform.rotate`."""
    import kornia
    import torch

    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *_args, **_kwargs: self
    if not hasattr(kornia, "rotate"):
        kornia.rotate = kornia.geometry.transform.rotate


def load_official(official, repo):
    timm_stand_in()
    cpu_patches()
    path = os.path.join(official, repo)
    if not os.path.isdir(path):
        sys.exit(f"{path}: clone the official repository there (see scripts/train_bench.py)")
    sys.path.insert(0, path)
    os.chdir(path)  # some modules read files relative to the repository


def cddfuse(args, phase):
    import kornia
    import torch
    import torch.nn as nn

    load_official(args.official, "MMIF-CDDFuse")
    from net import BaseFeatureExtraction, DetailFeatureExtraction, Restormer_Decoder, Restormer_Encoder
    from utils.loss import Fusionloss, cc

    enc, dec = Restormer_Encoder(), Restormer_Decoder()
    base, detail = BaseFeatureExtraction(dim=64, num_heads=8), DetailFeatureExtraction(num_layers=1)
    modules = [enc, dec, base, detail]
    opts = [torch.optim.Adam(m.parameters(), lr=1e-4, weight_decay=0) for m in modules]
    # kornia >= 0.6 renamed SSIM (the official script's) to SSIMLoss: the same (1 - SSIM) / 2.
    ssim = (getattr(kornia.losses, "SSIM", None) or kornia.losses.SSIMLoss)(11, reduction="mean")
    mse, l1, fusion = nn.MSELoss(), nn.L1Loss(), Fusionloss()
    grad = kornia.filters.SpatialGradient()
    b, s = args.batch, args.size

    def step():
        vis, ir = torch.rand(b, 1, s, s), torch.rand(b, 1, s, s)
        for m in modules:
            m.train()
            m.zero_grad()
        for o in opts:
            o.zero_grad()
        vb, vd, _ = enc(vis)
        ib, id_, _ = enc(ir)
        decomp = cc(vd, id_) ** 2 / (1.01 + cc(vb, ib))
        if phase == 1:
            vis_hat, _ = dec(vis, vb, vd)
            ir_hat, _ = dec(ir, ib, id_)
            loss = (
                5 * ssim(vis, vis_hat) + mse(vis, vis_hat) + 5 * ssim(ir, ir_hat) + mse(ir, ir_hat)
                + 2.0 * decomp + 5.0 * l1(grad(vis), grad(vis_hat))
            )
            trained = modules[:2]
        else:
            fused, _ = dec(vis, base(ib + vb), detail(id_ + vd))
            floss, _, _ = fusion(vis, ir, fused)
            loss = floss + 2.0 * decomp
            trained = modules
        loss.backward()
        for m in trained:
            nn.utils.clip_grad_norm_(m.parameters(), max_norm=0.01, norm_type=2)
        for o in opts[: len(trained)]:
            o.step()

    return step


def emma_pseudo_sensor(args):
    import torch
    import torch.nn.functional as F

    load_official(args.official, "MMIF-EMMA")
    from nets.Unet5 import UNet5

    model = UNet5()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=0)
    b, s = args.batch, args.size

    def step():
        x, target = torch.rand(b, 1, s, s), torch.rand(b, 1, s, s)
        model.train()
        opt.zero_grad()
        F.mse_loss(model(x), target).backward()
        opt.step()

    return step


def emma_ufuser(args):
    import torch

    load_official(args.official, "MMIF-EMMA")
    from nets.Ufuser import Ufuser
    from nets.Unet5 import UNet5
    from utils import Transformer, loss_fusion

    model = Ufuser()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=0)
    model.train()
    to_vis, to_ir = UNet5().eval(), UNet5().eval()  # frozen pseudo-sensors (random weights)
    loss = loss_fusion()
    transform = Transformer(3, 3, 3)
    b, s = args.batch, args.size

    def step():
        ir, vis = torch.rand(b, 1, s, s), torch.rand(b, 1, s, s)
        fused = model(ir, vis)
        ft = transform.apply(fused)
        ft_hat = model(to_ir(ft), to_vis(ft))
        opt.zero_grad()
        total = loss(to_vis(fused), vis) + loss(to_ir(fused), ir) + 0.1 * loss(ft, ft_hat)
        total.backward()
        opt.step()

    return step


def film(args):
    import numpy as np
    import torch

    load_official(args.official, "IF-FILM")
    from net.Film import Net
    from utils.lossfun import Fusionloss, LpLssimLossweight

    if args.size != 288:
        sys.exit("FILM's official network is built for 288x384 images only (--size 288)")
    model = Net(hidden_dim=256, image2text_dim=32)
    criterion = LpLssimLossweight()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, weight_decay=0)
    loss = Fusionloss(coeff_grad=20, device="cpu")
    b, h, w = args.batch, 288, 384

    def step():
        ir, vis, text = torch.rand(b, 1, h, w), torch.rand(b, 1, h, w), torch.zeros(b, 149, 768)
        model.train()
        fused = model(ir, vis, text)
        weight = int(np.sqrt(h * w))
        lpa, _, _ = criterion(image_in=ir, image_out=fused, weight=weight)
        lpb, _, _ = criterion(image_in=vis, image_out=fused, weight=weight)
        in_grad, _, _ = loss(ir, vis, fused)
        total = in_grad + 0 * (lpa + lpb)  # the official default loss_ssim weight is 0
        opt.zero_grad()
        total.backward()
        opt.step()

    return step


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procedure", required=True, choices=["cddfuse1", "cddfuse2", "emma-ai", "emma", "film"])
    p.add_argument("--official", required=True, help="folder holding MMIF-CDDFuse, MMIF-EMMA, IF-FILM")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--size", type=int, required=True, help="square patch side (FILM: 288, i.e. 288x384)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.official = os.path.abspath(args.official)

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    make = {
        "cddfuse1": lambda a: cddfuse(a, 1),
        "cddfuse2": lambda a: cddfuse(a, 2),
        "emma-ai": emma_pseudo_sensor,
        "emma": emma_ufuser,
        "film": film,
    }[args.procedure]
    step = make(args)
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(json.dumps({
        "procedure": args.procedure,
        "batch": args.batch,
        "size": args.size,
        "step_seconds": times,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
