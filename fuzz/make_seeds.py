"""Writes the fuzz targets' seed inputs to fuzz/corpus-work/<target>/ (small valid files of every
format each target reads). Run once before `cargo +nightly fuzz run`; the committed corpus
(fuzz/corpus/) is what `cargo fuzz cmin` kept of the fuzzing runs. Needs torch, numpy,
safetensors and Pillow-free numpy only; not needed by any test."""
import collections, hashlib, io, os, pickle, struct, sys, zlib

import numpy as np
import torch
from safetensors.numpy import save as st_save

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-work")


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# checkpoint: .pth (zip), pickles, Jittor .pkl, safetensors
sd = collections.OrderedDict(w=torch.arange(6, dtype=torch.float32).reshape(2, 3), b=torch.ones(2, dtype=torch.float16))
buf = io.BytesIO()
torch.save({"model": sd, "epoch": 3, "name": "x"}, buf)
put("checkpoint", "pth", buf.getvalue())
buf = io.BytesIO()
torch.save(sd["w"][:, 1:], buf)  # a strided view
put("checkpoint", "pth_view", buf.getvalue())
arr = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.arange(3, dtype=np.int64)}
for proto in (2, 4):
    put("checkpoint", f"numpy_pickle_{proto}", pickle.dumps(arr, protocol=proto))
body = pickle.dumps({"model": arr}, protocol=4)
put("checkpoint", "jittor_pkl", body + hashlib.sha1(body).digest() + struct.pack("<Q", 0) + b"HCAJSLHD")
put("checkpoint", "safetensors", st_save(arr, metadata={"epoch": "1"}))
put("checkpoint", "forbidden_global", b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.")


# npy
def npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


put("npy", "2d", npy(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)))
put("npy", "3d", npy(np.zeros((1, 2, 3), dtype=np.float32)))
put("npy", "f8", npy(np.zeros(3)))


# image / eval: PNG (gray, RGB, 16-bit), BMP, TIFF, JPEG, .npy image
def png(w, h, ctype, depth, raw):
    def chunk(k, d):
        return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


imgs = {
    "png_gray": png(3, 2, 0, 8, b"".join(b"\0" + bytes([i * 40 + j for j in range(3)]) for i in range(2))),
    "png_rgb": png(2, 2, 2, 8, b"".join(b"\0" + bytes(range(i, i + 6)) for i in range(2))),
    "png_gray16": png(2, 1, 0, 16, b"\0\x12\x34\xff\xff"),
    "npy_img": npy(np.full((2, 3), 0.5, dtype=np.float32)),
}
w, h = 2, 2
row = bytes([10, 20, 30, 40, 50, 60]) + b"\0\0"
imgs["bmp"] = b"BM" + struct.pack("<IHHI", 54 + 8 * h, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 8 * h, 0, 0, 0, 0) + row * h
pix = bytes([0, 64, 128, 255])
entries = [(256, 3, 2), (257, 3, 2), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8 + 2 + 12 * 8 + 4), (277, 3, 1), (278, 3, 2), (279, 4, 4)]
ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", t, ty, 1) + (struct.pack("<HH", v, 0) if ty == 3 else struct.pack("<I", v)) for t, ty, v in entries) + b"\0\0\0\0"
imgs["tiff"] = b"II*\0" + struct.pack("<I", 8) + ifd + pix
for f in os.listdir(os.path.join(os.path.dirname(__file__), "..", "crates", "mmif-io", "tests", "data")):
    if f.endswith(".jpg"):
        imgs[f] = open(os.path.join(os.path.dirname(__file__), "..", "crates", "mmif-io", "tests", "data", f), "rb").read()
for name, data in imgs.items():
    put("image", name, data)
    put("eval", name, data)


# mmifds: version 1 (two planes a record) and version 2 (planes + text features, an index),
# laid out as crates/mmif-io/src/dataset.rs documents it.
def mmifds(version, sources, h, w, records, dim=0):
    meta = b'{"seed":true}'
    body, index, off = b"", b"", 64
    for r, tokens in enumerate(records):
        rec = np.arange(sources * h * w, dtype="<f4").tobytes() + np.full(tokens * dim, r, dtype="<f4").tobytes()
        index += struct.pack("<QQ", off, tokens)
        body, off = body + rec, off + len(rec)
    index_off = 64 + len(body)
    meta_off = index_off + (len(index) if version == 2 else 0)
    head = b"MMIFDS\0\x01" + struct.pack("<IIIIQQQ", version, sources, h, w, len(records), meta_off, len(meta))
    head += struct.pack("<QII", index_off if version == 2 else 0, dim, 0)
    return head + body + (index if version == 2 else b"") + meta


put("mmifds", "v1", mmifds(1, 2, 3, 4, [0, 0, 0]))
put("mmifds", "v1_empty", mmifds(1, 2, 1, 1, []))
put("mmifds", "v2_uniform", mmifds(2, 2, 2, 3, [4, 4], dim=5))
put("mmifds", "v2_ragged", mmifds(2, 1, 2, 2, [1, 3, 2], dim=3))
print("seeds in", root)
