"""Tests of the installed `mmif-fusion` wheel against the `mmif` binary and the metric fixtures.

Environment: MMIF_BIN (the `mmif` binary; default target/release/mmif), MMIF_FIXTURES (default
../shared/fixtures from the repository root). `scripts/test_python.sh` builds the wheel into a
fresh virtual environment and runs these tests.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmif_fusion as mf
from mmif_fusion import Evaluator

ROOT = Path(__file__).resolve().parents[3]
MMIF = os.environ.get("MMIF_BIN", str(ROOT / "target" / "release" / "mmif"))
FIXTURES = Path(os.environ.get("MMIF_FIXTURES", ROOT.parent / "shared" / "fixtures"))
if not FIXTURES.is_absolute():
    FIXTURES = ROOT / FIXTURES


def fixture(name):
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(f"fixture {path} not found: set MMIF_FIXTURES to the fixture folder")
    return path


def mmif(*args):
    if not Path(MMIF).exists():
        pytest.fail(f"the mmif binary {MMIF} does not exist: build it (cargo build --release -p mmif-cli) or set MMIF_BIN")
    out = subprocess.run([MMIF, *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, f"mmif {args} failed:\n{out.stderr}"
    return out


def read(path):
    with Image.open(path) as im:
        return np.asarray(im)


def crop(path, x, y, w, h):
    return read(path)[y : y + h, x : x + w].copy()


@pytest.fixture(scope="module")
def example():
    """The example pair of the repository (TNO, 620×450 gray PNGs)."""
    return read(ROOT / "examples" / "ir.png"), read(ROOT / "examples" / "vis.png")


def colour_vis(shape, seed=3):
    """A smooth RGB image (distinct channels) of `shape` (H, W)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 40, size=(h, w, 3))
    rgb = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) * 127 // max(h + w, 1)], -1)
    return np.clip(rgb * 0.8 + noise, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- arrays in, arrays out


def test_gray_arrays_in_float32_and_uint8_out(example):
    ir, vis = (a[:96, :128] for a in example)
    out = mf.fuse(ir, vis, model="gff", task="ivf")
    assert out.dtype == np.float32 and out.shape == (96, 128)
    assert np.isfinite(out).all()  # gff may overshoot [0, 1] a little, as in mmif fuse's .npy
    top = mf.fuse(ir, vis, model="max", task="ivf")
    np.testing.assert_allclose(top, np.maximum(ir, vis) / 255.0, rtol=1e-6)
    out8 = mf.fuse(ir, vis, model="gff", task="ivf", dtype="uint8")
    assert out8.dtype == np.uint8 and out8.shape == (96, 128)
    # 16-bit sources are scaled to 0..255: v·257 is the same image as v
    out16 = mf.fuse(ir.astype(np.uint16) * 257, vis.astype(np.uint16) * 257, model="gff", task="ivf")
    np.testing.assert_array_equal(out16, out)
    # a non-contiguous view is read in its logical order
    np.testing.assert_array_equal(mf.fuse(example[0][:192:2, :256:2], example[1][:192:2, :256:2], model="mean"),
                                  mf.fuse(example[0][:192:2, :256:2].copy(), example[1][:192:2, :256:2].copy(), model="mean"))


def test_colour_source_gives_colour_output(example):
    ir = example[0][:64, :80]
    vis = colour_vis(ir.shape)
    out = mf.fuse(ir, vis, model="gff", task="ivf")
    assert out.dtype == np.float32 and out.shape == (64, 80, 3)
    assert mf.fuse(ir, vis, model="gff", task="ivf", gray=True).shape == (64, 80)
    f32 = mf.fuse(ir.astype(np.float32) / 255, vis.astype(np.float32) / 255, model="max", task="ivf")
    assert f32.shape == (64, 80, 3)


def test_fuser_fuses_many_pairs_and_names_its_model(example):
    fuser = mf.Fuser("weighted", task="ivf", weight=0.25)
    assert fuser.model == "weighted" and "weighted" in repr(fuser)
    a, b = example[0][:40, :40], example[1][:40, :40]
    expected = (0.25 * a.astype(np.float64) + 0.75 * b) / 255
    np.testing.assert_allclose(fuser.fuse(a, b), expected, atol=1e-6)
    assert "gff" in mf.list_models() and "cddfuse" in mf.list_models()


# ---------------------------------------------------------------- bit-identical to the CLI


@pytest.mark.parametrize("model", [None, "gff", "lp:3"])
def test_fuse_equals_the_cli_bit_for_bit(tmp_path, example, model):
    ir_path, vis_path = ROOT / "examples" / "ir.png", ROOT / "examples" / "vis.png"
    flags = ["-m", model] if model else []
    mmif("fuse", *flags, "--ir", ir_path, "--vis", vis_path, "-o", tmp_path / "out.npy")
    mmif("fuse", *flags, "--ir", ir_path, "--vis", vis_path, "-o", tmp_path / "out.png")
    ir, vis = example
    got = mf.fuse(ir, vis, model=model, task="ivf")
    want = np.load(tmp_path / "out.npy")
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), "float32 bits differ from mmif fuse -o out.npy"
    np.testing.assert_array_equal(mf.fuse(ir, vis, model=model, task="ivf", dtype="uint8"), read(tmp_path / "out.png"))


def test_colour_fuse_equals_the_cli(tmp_path, example):
    ir = example[0][:72, :90].copy()
    vis = colour_vis(ir.shape, seed=11)
    Image.fromarray(ir).save(tmp_path / "ir.png")
    Image.fromarray(vis).save(tmp_path / "vis.png")
    mmif("fuse", "-m", "gff", "--ir", tmp_path / "ir.png", "--vis", tmp_path / "vis.png", "-o", tmp_path / "o.npy")
    mmif("fuse", "-m", "gff", "--ir", tmp_path / "ir.png", "--vis", tmp_path / "vis.png", "-o", tmp_path / "o.png")
    got = mf.fuse(ir, vis, model="gff", task="ivf")
    want = np.load(tmp_path / "o.npy")
    assert want.shape == (72, 90, 3)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(mf.fuse(ir, vis, model="gff", task="ivf", dtype="uint8"), read(tmp_path / "o.png"))


@pytest.mark.parametrize("model", ["gtf:loops=2", "ifevip", "tif"])
def test_colour_channels_equal_the_cli(tmp_path, example, model):
    """color="channels": VIFB's colour handling (joint for gtf and ifevip), as mmif fuse --color channels."""
    ir = example[0][:40, :52].copy()
    vis = colour_vis(ir.shape, seed=5)
    Image.fromarray(ir).save(tmp_path / "ir.png")
    Image.fromarray(vis).save(tmp_path / "vis.png")
    for ext in ("npy", "png"):
        mmif("fuse", "-m", model, "--color", "channels", "--ir", tmp_path / "ir.png", "--vis", tmp_path / "vis.png",
             "-o", tmp_path / f"o.{ext}")
    got = mf.fuse(ir, vis, model=model, task="ivf", color="channels")
    want = np.load(tmp_path / "o.npy")
    assert want.shape == (40, 52, 3)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(mf.fuse(ir, vis, model=model, task="ivf", color="channels", dtype="uint8"),
                                  read(tmp_path / "o.png"))
    # luma fusion stays the default and differs
    assert not np.array_equal(mf.fuse(ir, vis, model=model, task="ivf"), got)


def test_cddfuse_checkpoint_equals_the_cli(tmp_path):
    """The official-layout CDDFuse checkpoint of the fixtures on their float32 inputs."""
    weights = fixture("cddfuse_seed1.pth")
    ir_path, vis_path = fixture("input_ivf_ir_64x96.npy"), fixture("input_ivf_vi_64x96.npy")
    for flags, kwargs in [([], {}), (["--raw"], {"raw": True})]:
        out = tmp_path / f"cdd{len(flags)}.npy"
        mmif("fuse", "-m", "cddfuse", "-w", weights, "--ir", ir_path, "--vis", vis_path, "-o", out, *flags)
        fuser = mf.Fuser("cddfuse", weights, task="ivf", **kwargs)
        got = fuser.fuse(np.load(ir_path), np.load(vis_path))
        want = np.load(out)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), f"cddfuse {flags}"


def test_cddfuse_bands_and_the_memory_check():
    """`bands` runs CDDFuse in bands of rows (the same result up to float rounding); a pair whose
    estimated peak exceeds the memory available is refused before anything runs, as by `mmif fuse`."""
    weights = fixture("cddfuse_seed1.pth")
    ir, vis = np.load(fixture("input_ivf_ir_64x96.npy")), np.load(fixture("input_ivf_vi_64x96.npy"))
    whole = mf.Fuser("cddfuse", weights, task="ivf", bands="off", raw=True).fuse(ir, vis)
    banded = mf.Fuser("cddfuse", weights, task="ivf", bands="16", raw=True).fuse(ir, vis)
    assert np.abs(banded - whole).max() <= 1e-5
    with pytest.raises(ValueError):
        mf.Fuser("cddfuse", weights, task="ivf", bands="sideways")
    # 64 megapixels need about 180 GB whole: more than any machine that runs these tests has
    big = np.zeros((8000, 8000), np.uint8)
    fuser = mf.Fuser("cddfuse", weights, task="ivf", bands="off")
    with pytest.raises(mf.MmifError, match=r"cddfuse on 8000×8000 needs about .*--bands.*memory_check=False"):
        fuser.fuse(big, big)


# ---------------------------------------------------------------- the Evaluator drop-in


def metric_cases():
    expected = json.loads(fixture("metrics/metrics_expected.json").read_text())["cases"]
    for case, values in expected.items():
        ir, vi, fused = (mf.gray(read(fixture(f"metrics/{case}_{s}.png"))) for s in ("ir", "vi", "fused"))
        yield case, values, ir, vi, fused


def close(got, want, case, name):
    assert abs(got - want) <= 1e-6 * max(abs(want), 1e-12), f"{case} {name}: {got!r} vs the official {want!r}"


def test_evaluator_equals_the_metric_fixtures():
    n = 0
    for case, want, ir, vi, fi in metric_cases():
        assert fi.dtype == np.float32 and fi.ndim == 2
        for name in ("EN", "SD", "SF", "AG"):
            close(getattr(Evaluator, name)(fi), want[name], case, name)
        for name in ("MI", "MSE", "CC", "PSNR", "SCD", "VIFF", "Qabf"):
            close(getattr(Evaluator, name)(fi, ir, vi), want[name], case, name)
        close(Evaluator.SSIM(fi, ir, vi), want["SSIM_range2"], case, "SSIM (data_range 2)")
        close(Evaluator.SSIM(fi, ir, vi, data_range=255), want["SSIM_range255"], case, "SSIM (data_range 255)")
        # float64 arrays (numpy's default) give the same numbers
        close(Evaluator.MI(fi.astype(np.float64), ir.astype(np.float64), vi), want["MI"], case, "MI (float64)")
        n += 1
    assert n > 0, "no metric fixture cases"


def test_evaluate_and_metric_follow_mmif_eval_presets():
    for case, want, ir, vi, fi in metric_cases():
        scores = mf.evaluate(ir, vi, fi, preset="cddfuse")
        assert list(scores) == mf.preset_metrics("cddfuse") == ["EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM"]
        close(scores["SSIM"], want["SSIM_range2"], case, "SSIM")
        close(scores["VIF"], want["VIFF"], case, "VIF")
        film = mf.evaluate(ir, vi, fi, preset="film")
        close(film["AG"], want["AG"], case, "AG")
        close(mf.metric("SSIM", fi, ir, vi), want["SSIM_range255"], case, "SSIM (default 255)")
        vifb = mf.evaluate(ir.astype(np.uint8), vi.astype(np.uint8), fi.astype(np.uint8), preset="vifb")
        assert list(vifb)[0] == "vifb.CE" and len(vifb) == 13
        assert set(mf.list_metrics()) >= set(vifb) | set(scores)
        break


def test_evaluate_equals_mmif_eval(tmp_path):
    """`evaluate` on arrays gives `mmif eval`'s numbers on the files, exactly."""
    for case, _, ir, vi, fi in metric_cases():
        out = mmif("eval", "--ir", fixture(f"metrics/{case}_ir.png"), "--vis", fixture(f"metrics/{case}_vi.png"),
                   "--fused", fixture(f"metrics/{case}_fused.png"), "--format", "json")
        want = json.loads(out.stdout)["mean"]
        assert mf.evaluate(ir, vi, fi) == want
        break


# ---------------------------------------------------------------- errors


def test_errors_are_clear_python_exceptions(tmp_path, example):
    ir, vis = example[0][:50, :60], example[1][:50, :60]
    with pytest.raises(TypeError, match="dtype float64 are not supported"):
        mf.fuse(ir.astype(np.float64), vis, model="gff")
    with pytest.raises(TypeError, match="expected a numpy array"):
        mf.fuse([[1, 2], [3, 4]], vis, model="gff")
    with pytest.raises(ValueError, match=r"shape H×W .* got shape \[50, 60, 2\]"):
        mf.fuse(np.zeros((50, 60, 2), np.uint8), vis, model="gff")
    with pytest.raises(ValueError, match="empty"):
        mf.fuse(np.zeros((0, 60), np.uint8), vis, model="gff")
    with pytest.raises(mf.MmifError, match=r"the sources differ in size: ir is 60x50, vis is 59x50"):
        mf.fuse(ir, vis[:, :59], model="gff", task="ivf")
    missing = tmp_path / "CDDFuse_IVF.pth"
    with pytest.raises(mf.MmifError, match="CDDFuse_IVF.pth"):
        mf.Fuser("cddfuse", missing, task="ivf")
    with pytest.raises(mf.MmifError, match="needs its weights"):
        mf.Fuser("cddfuse", task="ivf")
    with pytest.raises(ValueError, match="unknown model `nonsense`"):
        mf.Fuser("nonsense")
    with pytest.raises(ValueError, match="unknown task"):
        mf.Fuser("gff", task="xyz")
    with pytest.raises(mf.MmifError, match="is weight-free"):
        mf.Fuser("gff", missing)
    with pytest.raises(mf.MmifError):
        mf.Fuser("gff", not_a_parameter=3)
    with pytest.raises(ValueError, match="dtype must be"):
        mf.fuse(ir, vis, model="gff", dtype="int8")
    with pytest.raises(ValueError, match="unknown colour mode"):
        mf.Fuser("gff", color="rgb")
    with pytest.raises(mf.MmifError, match="--color channels is for weight-free methods"):
        mf.Fuser("cddfuse", task="ivf", color="channels")
    assert issubclass(mf.MmifError, ValueError)
    # the Evaluator
    with pytest.raises(ValueError, match="gray H×W"):
        Evaluator.EN(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(mf.MmifError):
        Evaluator.MI(np.zeros((10, 10), np.float32), np.zeros((10, 11), np.float32), np.zeros((10, 10), np.float32))
    with pytest.raises(mf.MmifError, match="at least"):
        Evaluator.VIFF(*(np.zeros((10, 10), np.float32),) * 3)
    with pytest.raises(ValueError, match="unknown metric|Unknown|unknown"):
        mf.metric("NOPE", ir, ir, ir)


# ---------------------------------------------------------------- Ray Data example


def test_ray_example_equals_the_cli(tmp_path, example):
    import ray  # a failure to import is a failure, not a skip
    examples = str(ROOT / "crates" / "mmif-py" / "examples")
    sys.path.insert(0, examples)
    import ray_fuse

    ir_dir, vis_dir = tmp_path / "ir", tmp_path / "vis"
    ir_dir.mkdir()
    vis_dir.mkdir()
    for i, (x, y) in enumerate([(0, 0), (200, 100), (400, 300), (300, 40)]):
        Image.fromarray(crop(ROOT / "examples" / "ir.png", x, y, 96, 80)).save(ir_dir / f"p{i}.png")
        vis = crop(ROOT / "examples" / "vis.png", x, y, 96, 80)
        if i == 3:
            vis = colour_vis(vis.shape, seed=i)
        Image.fromarray(vis).save(vis_dir / f"p{i}.png")

    # the actors import ray_fuse (and the installed mmif_fusion) in their own processes
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": examples}})
    try:
        result = ray_fuse.run(ir_dir, vis_dir, tmp_path / "ray", model="gff", task="ivf", actors=2, batch_size=2,
                                 actor_cpus=0.5)
    finally:
        ray.shutdown()

    mmif("fuse", "-m", "gff", "--ir-dir", ir_dir, "--vis-dir", vis_dir, "--out-dir", tmp_path / "cli")
    for i in range(4):
        np.testing.assert_array_equal(read(tmp_path / "ray" / f"p{i}.png"), read(tmp_path / "cli" / f"p{i}.png"))
    out = mmif("eval", "--ir-dir", ir_dir, "--vis-dir", vis_dir, "--fused-dir", tmp_path / "cli", "--format", "json",
               "--per-image", "--preset", "cddfuse")
    assert result == json.loads(out.stdout)
