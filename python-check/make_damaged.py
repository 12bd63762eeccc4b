"""Re-derives fixtures/keras_h5_bad/hdf5_segfault and hdf5_hang: Keras-made model.h5 files
(fixtures/keras_h5/k3_tutorial/model.h5) with a few bytes changed, found by this fuzz loop, on
which Debian's libhdf5 1.10.8 segfaults or loops forever. keras-transfer must turn both into a
one-line error. Plain Python, no dependencies: python3 python-check/make_damaged.py"""
import pathlib
import random

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "fixtures/keras_h5/k3_tutorial/model.h5"
# Case name -> (fuzz index i: the file is damaged(i), what keras-transfer's error must say).
CASES = {
    "hdf5_segfault": (133, "libhdf5 crashed reading it"),
    "hdf5_hang": (347, "libhdf5 was still reading it"),
}


def damaged(i: int) -> bytes:
    r = random.Random(i)
    b = bytearray(SOURCE.read_bytes())
    lo, hi = [(0, 96), (96, 4096), (0, len(b))][i % 3]
    for _ in range(r.randint(1, 8)):
        b[r.randrange(lo, min(hi, len(b)))] = r.randrange(256)
    return bytes(b)


if __name__ == "__main__":
    for name, (i, expect) in CASES.items():
        out = ROOT / "fixtures/keras_h5_bad" / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.h5").write_bytes(damaged(i))
        # The format tests/integration/hostile.rs reads: `exit N`, then text the error must contain.
        (out / "expect.txt").write_text(f"exit 3\n{expect}\nthe file is damaged\n")
        (out / "SOURCE").write_text(f"python-check/make_damaged.py: damaged({i}) of fixtures/keras_h5/k3_tutorial/model.h5\n")
        print(f"wrote {out / 'model.h5'}")
