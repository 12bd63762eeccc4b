#!/usr/bin/env python3
"""Regenerates fixtures/images/ (run by hand, never by the tests).

    python-check/run-venv python-check/make_fixtures_images.py

No Pillow in the venv: PNG and JPEG files are encoded by TensorFlow (tf.io.encode_png / encode_jpeg);
palette PNGs, BMPs and GIFs are written byte by byte below (their formats are small).

decode/NAME.EXT               tiny images (7x5) of every kind the folder reader accepts
decode/NAME.cC.npy            tf.io.decode_image(bytes, channels=C, expand_animations=False), uint8
decode/decode.json            for each image and C in 1, 3, 4: "ok" or TensorFlow's error text
resize/src.npy                a 7x5x3 uint8 image; resize/HxW.npy: tf.image.resize(src, (H, W)) float32
folder/                       a class-per-subfolder tree made from sklearn's bundled digits (8x8)
folder/../folder.json         Keras's order, labels and splits (index_directory, image_dataset_from_directory)
folder_pixels.npy             image_dataset_from_directory(folder, image_size=(10, 12), color_mode=rgb,
                              shuffle=False) as one float32 array, in its order
arrays/*.npz, *.npy           NumPy files for the array reader (good and bad); arrays/xy.csv the same numbers
                              as arrays/xy.npz for the CLI bit-for-bit test
"""

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "images"


def tf():
    import tensorflow as tf_
    return tf_


# ---------------------------------------------------------------- writers by hand

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def palette_png(index, palette, trns=None):
    h, w = index.shape
    raw = b"".join(b"\x00" + bytes(row) for row in index.astype(np.uint8))
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
    out += png_chunk(b"PLTE", bytes(palette.astype(np.uint8).reshape(-1)))
    if trns is not None:
        out += png_chunk(b"tRNS", bytes(trns))
    return out + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")


def raw_png(rows, width, height, bit_depth, color_type, extra=b"", palette=None, interlace=0):
    """A PNG from already packed scanlines (filter byte 0 added here), with chunks `extra` before IDAT."""
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type,
                                                                  0, 0, interlace))
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(palette.astype(np.uint8).reshape(-1)))
    return out + extra + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")


def pack_bits(row, bits):
    """Packs sample values of `bits` bits each (1, 2 or 4) into bytes, most significant first."""
    per = 8 // bits
    out = []
    for i in range(0, len(row), per):
        v = 0
        for j, s in enumerate(row[i:i + per]):
            v |= int(s) << (8 - bits * (j + 1))
        out.append(v)
    return out


def bmp(img, bpp, palette=None, top_down=False):
    """BITMAPINFOHEADER BMP, BI_RGB: 24-bit BGR, 32-bit BGRA or 8-bit indexed with `palette`."""
    h, w = img.shape[:2]
    row_bytes = (w * bpp // 8 + 3) // 4 * 4
    rows = []
    for r in (range(h) if top_down else range(h - 1, -1, -1)):
        if bpp == 8:
            row = bytes(img[r].astype(np.uint8))
        elif bpp == 24:
            row = bytes(img[r][:, ::-1].astype(np.uint8).reshape(-1))
        else:
            px = img[r].astype(np.uint8)
            row = bytes(np.concatenate([px[:, 2::-1], px[:, 3:4]], axis=1).reshape(-1))
        rows.append(row + b"\x00" * (row_bytes - len(row)))
    pal = b""
    if palette is not None:
        pal = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
    offset = 14 + 40 + len(pal)
    data = b"".join(rows)
    head = b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, bpp, 0, len(data), 2835, 2835,
                       len(palette) if palette is not None else 0, 0)
    return head + info + pal + data


def gif(index, palette):
    """A one-frame GIF89a, 256-colour global table, LZW codes kept at 9 bits by a clear code every 200."""
    h, w = index.shape
    codes = []
    for i, v in enumerate(index.reshape(-1)):
        if i % 200 == 0:
            codes.append(256)
        codes.append(int(v))
    codes.append(257)
    bits, nbits, out = 0, 0, bytearray()
    for c in codes:
        bits |= c << nbits
        nbits += 9
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 0xFF)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    pal = np.zeros((256, 3), np.uint8)
    pal[:len(palette)] = palette
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + bytes(pal.reshape(-1))
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x08" + blocks + b"\x00\x3b")


# ---------------------------------------------------------------- decode and resize

def decode_fixtures():
    t = tf()
    d = ROOT / "decode"
    d.mkdir(parents=True)
    rs = np.random.RandomState(21)
    rgb = rs.randint(0, 256, (5, 7, 3)).astype(np.uint8)
    rgba = rs.randint(0, 256, (5, 7, 4)).astype(np.uint8)
    gray = rs.randint(0, 256, (5, 7, 1)).astype(np.uint8)
    gray16 = rs.randint(0, 65536, (5, 7, 1)).astype(np.uint16)
    rgb16 = rs.randint(0, 65536, (5, 7, 3)).astype(np.uint16)
    # A smooth picture for JPEG (noise would only measure the codec's quantisation).
    yy, xx = np.mgrid[0:16, 0:16]
    smooth = np.stack([xx * 15, yy * 15, (xx + yy) * 7], axis=-1).astype(np.uint8)
    palette = rs.randint(0, 256, (6, 3)).astype(np.uint8)
    index = rs.randint(0, 6, (5, 7)).astype(np.uint8)
    gray_pal = np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8)
    files = {
        "rgb.png": t.io.encode_png(rgb).numpy(),
        "rgba.png": t.io.encode_png(rgba).numpy(),
        "gray.png": t.io.encode_png(gray).numpy(),
        "gray16.png": t.io.encode_png(gray16).numpy(),
        "rgb16.png": t.io.encode_png(rgb16).numpy(),
        "palette.png": palette_png(index, palette),
        "palette_trns.png": palette_png(index, palette, trns=[0, 128, 255]),
        "gray1bit.png": raw_png([pack_bits(r, 1) for r in (gray[:, :, 0] > 127)], 7, 5, 1, 0),
        "palette4bit.png": raw_png([pack_bits(r, 4) for r in index], 7, 5, 4, 3, palette=palette),
        "rgb_gamma.png": raw_png([r.reshape(-1) for r in rgb], 7, 5, 8, 2,
                                 extra=png_chunk(b"gAMA", struct.pack(">I", 45455))),
        "gray_trns.png": raw_png([r for r in gray[:, :, 0]], 7, 5, 8, 0,
                                 extra=png_chunk(b"tRNS", struct.pack(">H", int(gray[0, 0, 0])))),
        "rgb24.bmp": bmp(rgb, 24),
        "rgb24_topdown.bmp": bmp(rgb, 24, top_down=True),
        "rgba32.bmp": bmp(rgba, 32),
        "gray8.bmp": bmp(gray[:, :, 0], 8, palette=gray_pal),
        "rgb.jpg": t.io.encode_jpeg(smooth, quality=90).numpy(),
        "rgb444.jpg": t.io.encode_jpeg(smooth, quality=95, chroma_downsampling=False).numpy(),
        "gray.jpg": t.io.encode_jpeg(smooth[:, :, :1], quality=90).numpy(),
        "noise.jpg": t.io.encode_jpeg(rgb, quality=75).numpy(),
        "palette.gif": gif(index, palette),
    }
    results = {}
    for name, data in files.items():
        (d / name).write_bytes(data)
        results[name] = {}
        for c in (1, 3, 4):
            try:
                img = t.io.decode_image(data, channels=c, expand_animations=False).numpy()
            except Exception as e:  # TensorFlow refuses some channel counts for some formats
                results[name][str(c)] = "error: " + str(e).splitlines()[0][:200]
                continue
            np.save(d / f"{name}.c{c}.npy", img)
            results[name][str(c)] = "ok"
    (d / "decode.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")

    r = ROOT / "resize"
    r.mkdir(parents=True)
    src = rs.randint(0, 256, (5, 7, 3)).astype(np.uint8)
    np.save(r / "src.npy", src)
    for h, w in [(3, 4), (5, 7), (11, 13), (2, 19), (1, 1), (8, 3)]:
        out = t.image.resize(src, (h, w)).numpy()
        assert out.dtype == np.float32
        np.save(r / f"{h}x{w}.npy", out)


# ---------------------------------------------------------------- folder order and splits

def folder_fixtures():
    from sklearn.datasets import load_digits
    from keras.src.utils import dataset_utils
    from keras.src.utils.image_dataset_utils import ALLOWLIST_FORMATS
    import keras
    t = tf()
    digits = load_digits()
    f = ROOT / "folder"
    f.mkdir(parents=True)
    imgs = (digits.images * 16).clip(0, 255).astype(np.uint8)  # 8x8, 0..16 -> 0..255
    used = iter(range(len(imgs)))

    def put(rel, kind="png"):
        p = f / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        img = imgs[next(used)][:, :, None]
        if kind == "png":
            p.write_bytes(t.io.encode_png(img).numpy())
        elif kind == "bmp":
            p.write_bytes(bmp(img[:, :, 0], 8, palette=np.stack([np.arange(256)] * 3, axis=1)))
        elif kind == "gif":
            p.write_bytes(gif(img[:, :, 0], np.stack([np.arange(256)] * 3, axis=1)))

    # Names chosen for the orders that matter: numbers as text, upper before lower case, nested
    # folders (sorted by their whole path), upper-case extensions, files that are not images.
    for rel in ["cat/10.png", "cat/2.png", "cat/B.png", "cat/a.png", "cat/sub/1.png", "cat/sub dir/0.png",
                "cat/sub/deeper/z.PNG", "cat/sub-x/y.png", "cat/_under.png"]:
        put(rel)
    put("cat/img.bmp", "bmp")
    put("Dog/x.png")
    put("Dog/y.Png")
    put("Dog/w.gif", "gif")
    for i in range(6):
        put(f"eel/e{i}.png")
    put(".hidden/h.png")  # hidden class folder: not a class
    put("eel/.dotfile.png")  # a dotted file inside a class: Keras keeps it
    (f / "cat" / "notes.txt").write_text("not an image\n")
    (f / "eel" / "readme.md").write_text("not an image\n")
    (f / "stray.png").write_bytes(t.io.encode_png(imgs[0][:, :, None]).numpy())  # top-level file: ignored

    def rel(paths):
        return [os.path.relpath(p, f) for p in paths]

    out = {"class_names": None, "cases": []}
    for shuffle, seed in [(False, None), (True, 7), (True, 1337)]:
        paths, labels, names = dataset_utils.index_directory(str(f), "inferred", formats=ALLOWLIST_FORMATS,
                                                             shuffle=shuffle, seed=seed, verbose=False)
        out["class_names"] = names
        case = {"shuffle": shuffle, "seed": seed, "paths": rel(paths), "labels": [int(v) for v in labels],
                "splits": {}}
        for split in (0.2, 0.25, 0.5, 0.9):
            for subset in ("training", "validation"):
                p, lab = dataset_utils.get_training_or_validation_split(paths, labels, split, subset)
                case["splits"][f"{split}:{subset}"] = {"paths": rel(p), "labels": [int(v) for v in lab]}
        out["cases"].append(case)
    ds = keras.utils.image_dataset_from_directory(str(f), image_size=(10, 12), color_mode="rgb",
                                                  shuffle=False, batch_size=4, label_mode="int")
    out["dataset_file_paths"] = rel(ds.file_paths)
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    out["dataset_labels"] = [int(v) for v in np.concatenate(ys)]
    (ROOT / "folder.json").write_text(json.dumps(out, indent=1) + "\n")
    np.save(ROOT / "folder_pixels.npy", np.concatenate(xs).astype(np.float32))


# ---------------------------------------------------------------- NumPy arrays

def array_fixtures():
    a = ROOT / "arrays"
    a.mkdir(parents=True)
    rs = np.random.RandomState(5)
    centers = rs.uniform(-3, 3, (3, 4))
    y = rs.randint(0, 3, 60)
    x = (centers[y] + rs.normal(0, 1.0, (60, 4))).astype(np.float32)
    np.savez(a / "xy.npz", x=x, y=y)
    np.savez_compressed(a / "xy_compressed.npz", x=x, y=y.astype(np.int32))
    np.save(a / "x.npy", x)
    np.save(a / "y.npy", y.astype(np.uint8))
    np.savez(a / "xy_f64.npz", x=x.astype(np.float64), y=y)
    np.savez(a / "xy_fortran.npz", x=np.asfortranarray(x), y=y)
    np.savez(a / "xy_bigendian.npz", x=x.astype(">f4"), y=y.astype(">i8"))
    np.savez(a / "xy_u8.npz", x=(np.abs(x) * 30).astype(np.uint8), y=y)
    np.savez(a / "images_u8.npz", x=rs.randint(0, 256, (4, 5, 6, 3)).astype(np.uint8), y=np.arange(4))
    # The test set: the same numbers in a CSV, label last (as repr: every float32 is exact in a double).
    with open(a / "xy.csv", "w") as fh:
        fh.write("x0,x1,x2,x3,y\n")
        for row, lab in zip(x, y):
            fh.write(",".join(repr(float(v)) for v in row) + f",{lab}\n")
    np.savez(a / "test.npz", x=x[:12], y=y[:12])
    with open(a / "test.csv", "w") as fh:
        fh.write("x0,x1,x2,x3,y\n")
        for row, lab in zip(x[:12], y[:12]):
            fh.write(",".join(repr(float(v)) for v in row) + f",{lab}\n")
    # Bad ones.
    np.savez(a / "bad_rows.npz", x=x, y=y[:-1])
    np.savez(a / "bad_no_y.npz", x=x)
    np.savez(a / "bad_complex.npz", x=x.astype(np.complex64), y=y)
    np.savez(a / "bad_object.npz", x=np.array([1.0, "a", None], dtype=object).reshape(3, 1), y=np.arange(3))
    np.save(a / "bad_object.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(a / "bad_strings.npz", x=np.array([["a", "b"]]), y=np.arange(1))
    np.savez(a / "bad_record.npz", x=np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]), y=np.arange(3))
    np.savez(a / "bad_scalar.npz", x=np.float32(1.0), y=np.arange(1))


def main():
    if ROOT.exists():
        shutil.rmtree(ROOT)
    ROOT.mkdir(parents=True)
    decode_fixtures()
    folder_fixtures()
    array_fixtures()
    print("wrote", ROOT)


if __name__ == "__main__":
    main()
