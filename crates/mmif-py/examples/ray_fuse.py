"""Fuse and score a folder of pairs with Ray Data.

``ray.data.read_images`` reads source ``a`` (e.g. the infrared folder); ``map_batches`` runs on a
pool of actors, each holding one loaded ``mmif_fusion.Fuser`` (a network's checkpoint is read
once per actor, not once per pair), which reads the partner image of each row from the ``b``
folder by file stem, fuses the pair, writes ``<out>/<stem>.png`` and scores it with the metrics
of ``mmif eval``. The scores are written as ``mmif eval --format json --per-image`` writes them,
so shards of a larger run can be combined with ``mmif eval --merge``.

    python ray_fuse.py --a-dir test_img/TNO/ir --b-dir test_img/TNO/vi --out out/ray \
        --model cddfuse --weights CDDFuse_IVF.pth --task ivf --actors 4 --json scores.json
    ray.init(address="auto") is used when RAY_ADDRESS is set (a cluster), else a local instance.

The fused PNGs equal ``mmif fuse --out-dir`` and the scores ``mmif eval`` on them (PNG, BMP and
TIFF sources; JPEG is decoded by PIL here and by libjpeg-turbo's algorithms in mmif, which can
differ by one level on a few pixels).
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

import mmif_fusion as mf

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_array(path):
    """An image file as the array ``ray.data.read_images`` gives (PIL, mode kept)."""
    with Image.open(path) as im:
        return np.asarray(im)


class FuseAndScore:
    """One Ray actor: a loaded Fuser, the partner folder, where to write, what to score."""

    def __init__(self, b_dir, out_dir, model, weights, task, preset):
        self.fuser = mf.Fuser(model, weights, task=task)
        self.b = {p.stem: p for p in Path(b_dir).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
        self.out = Path(out_dir)
        self.preset = preset

    def __call__(self, batch):
        rows = {"stem": [], "scores": []}
        for image, path in zip(batch["image"], batch["path"]):
            stem = Path(path).stem
            if stem not in self.b:
                raise ValueError(f"{path}: no partner named {stem}.* in the b folder")
            a = np.asarray(image)
            b = read_array(self.b[stem])
            fused = self.fuser.fuse(a, b, dtype="uint8")
            Image.fromarray(fused).save(self.out / f"{stem}.png")
            scores = mf.evaluate(mf.gray(a), mf.gray(b), mf.gray(fused), preset=self.preset)
            rows["stem"].append(stem)
            rows["scores"].append(json.dumps(scores))
        return {"stem": np.array(rows["stem"]), "scores": np.array(rows["scores"])}


def run(a_dir, b_dir, out_dir, *, model=None, weights=None, task="ivf", preset="cddfuse", actors=2, batch_size=4,
        actor_cpus=1.0):
    """Fuses and scores every pair; returns ``{"per_image": {stem: scores}, "mean": scores}`` with
    the images in stem order and the means summed in that order, as ``mmif eval --format json``.
    Each actor reserves ``actor_cpus`` CPUs: leave some to ``read_images``'s tasks (with every CPU
    held by an actor, the reads never run)."""
    import ray

    os.makedirs(out_dir, exist_ok=True)
    ds = ray.data.read_images(str(a_dir), include_paths=True, mode=None)
    ds = ds.map_batches(
        FuseAndScore,
        fn_constructor_kwargs=dict(
            b_dir=str(b_dir), out_dir=str(out_dir), model=model, weights=weights, task=task, preset=preset
        ),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=actors,
        num_cpus=actor_cpus,
    )
    per_image = {row["stem"]: json.loads(row["scores"]) for row in ds.iter_rows()}
    per_image = dict(sorted(per_image.items()))
    names = list(next(iter(per_image.values())).keys())
    mean = {}
    for m in names:
        total = 0.0
        for v in per_image.values():
            total += v[m]
        mean[m] = total / len(per_image)
    return {"per_image": per_image, "mean": mean}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a-dir", required=True, help="source a: infrared, MRI, over-exposed or near-focused images")
    ap.add_argument("--b-dir", required=True, help="source b, paired by file stem")
    ap.add_argument("--out", required=True, help="folder of fused PNGs")
    ap.add_argument("--model", default=None, help="network or weight-free method (default: mmif fuse's)")
    ap.add_argument("--weights", default=None, help="checkpoint of a network")
    ap.add_argument("--task", default="ivf", choices=["ivf", "mif", "mef", "mff", "generic"])
    ap.add_argument("--preset", default="cddfuse", choices=["cddfuse", "film", "vifb"])
    ap.add_argument("--actors", type=int, default=2, help="actors, each holding one loaded model")
    ap.add_argument("--actor-cpus", type=float, default=1.0, help="CPUs each actor reserves")
    ap.add_argument("--json", default=None, help="write the scores here (mmif eval --format json layout)")
    args = ap.parse_args()

    import ray

    ray.init(address="auto" if os.environ.get("RAY_ADDRESS") else None)
    result = run(args.a_dir, args.b_dir, args.out, model=args.model, weights=args.weights, task=args.task,
                 preset=args.preset, actors=args.actors, actor_cpus=args.actor_cpus)
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
