#!/usr/bin/env python3
"""Decodes the speech and noise recordings of Debian packages into mono 16-bit WAVs.

    python tools/prepare_speech.py --root DIR/debs/root --out DIR/raw
    python tools/prepare_speech.py --check      list what tools/requirements-speech.txt
                                              pins that this interpreter lacks

`attnkit data prepare-speech` runs this after `apt-get download` and `dpkg -x` of the
packages below into --root, then resamples what it wrote to 16 kHz, splits it and
mixes the validation and test pairs. This script only decodes (G.722, Vorbis, GSM and
the RIFF clips inside OpenTTD's sound catalogue): the codecs come from PyPI `av`.

writes  OUT/<role>/<source>/<name>.wav   at the recording's own rate, mono, 16-bit
        OUT/manifest.json                 role, source, package, rate and seconds per file

roles (training and validation use only the first two; the last two are held out):
  speech       asterisk-core-sounds-{en,es,fr,it}-g722 (16 kHz prompts, the English and
               Spanish prompts are one voice, French and Italian one each), fillets-ng-data-cs (Czech voice acting, several actors)
  noise        fillets-ng-data (sound effects and music), openttd-opensfx (effects)
  test-speech  asterisk-core-sounds-ru-g722 (Russian), asterisk-prompt-fr-armelle and
               asterisk-prompt-es-co (other French and Spanish voices, 8 kHz GSM)
  test-noise   alienblaster-data (alarms, shots, explosions), lincity-ng-data (city
               ambience: traffic, industry, markets, farms, windmills),
               extremetuxracer-data (sliding on snow, ice, mud, leaves)
"""
import argparse
import importlib.metadata
import json
import pathlib
import struct
import sys
import wave

REQUIREMENTS = pathlib.Path(__file__).resolve().parent / "requirements-speech.txt"

SOURCES = [
    # (role, source, package, folder under root, glob, container format)
    ("speech", "asterisk-en", "asterisk-core-sounds-en-g722", "usr/share/asterisk/sounds/en_US_f_Allison", "**/*.g722", "g722"),
    ("speech", "asterisk-es", "asterisk-core-sounds-es-g722", "usr/share/asterisk/sounds/es_MX_f_Allison", "**/*.g722", "g722"),
    ("speech", "asterisk-fr", "asterisk-core-sounds-fr-g722", "usr/share/asterisk/sounds/fr_CA_f_June", "**/*.g722", "g722"),
    ("speech", "asterisk-it", "asterisk-core-sounds-it-g722", "usr/share/asterisk/sounds/it_IT_m_Carlo", "**/*.g722", "g722"),
    ("speech", "fillets-cs", "fillets-ng-data-cs", "usr/share/games/fillets-ng/sound", "*/cs/*.ogg", None),
    ("noise", "fillets-sfx", "fillets-ng-data", "usr/share/games/fillets-ng/sound", "*/en/*.ogg", None),
    ("noise", "fillets-music", "fillets-ng-data", "usr/share/games/fillets-ng/music", "*.ogg", None),
    ("noise", "opensfx", "openttd-opensfx", "usr/share/games/openttd/baseset/opensfx", "opensfx.cat", "cat"),
    ("test-speech", "asterisk-ru", "asterisk-core-sounds-ru-g722", "usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU", "**/*.g722", "g722"),
    ("test-speech", "armelle-fr", "asterisk-prompt-fr-armelle", "usr/share/asterisk/sounds/fr", "**/*.gsm", "gsm"),
    ("test-speech", "colombia-es", "asterisk-prompt-es-co", "usr/share/asterisk/sounds/es", "**/*.gsm", "gsm"),
    ("test-noise", "alienblaster", "alienblaster-data", "usr/share/games/alienblaster/sound", "*.wav", None),
    ("test-noise", "lincity", "lincity-ng-data", "usr/share/games/lincity-ng/sounds", "*.wav", None),
    ("test-noise", "tuxracer", "extremetuxracer-data", "usr/share/games/etr/sounds", "*.wav", None),
]


def pinned():
    pins = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins.append((name.strip(), version.strip()))
    return pins


def missing_pins():
    missing = []
    for name, version in pinned():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if have != version:
            missing.append(f"{name}=={version} (have {have or 'none'})")
    return missing


def decode(path, fmt):
    """(rate, int16 mono numpy array) of one file through av."""
    import av
    import numpy as np

    with av.open(str(path), format=fmt) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        chunks = []
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    data = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return rate, data.astype(np.int16)


def catalogue_clips(path):
    """The RIFF/WAVE files stored one after another inside OpenTTD's opensfx.cat."""
    blob = path.read_bytes()
    at = 0
    while True:
        at = blob.find(b"RIFF", at)
        if at < 0:
            return
        size = struct.unpack_from("<I", blob, at + 4)[0] + 8
        if blob[at + 8 : at + 12] == b"WAVE":
            yield blob[at : at + size]
        at += 4


def wave_bytes(clip):
    """(rate, int16 mono numpy array) of a PCM WAV held in memory (8- or 16-bit)."""
    import io

    import numpy as np

    with wave.open(io.BytesIO(clip)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) * 256
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    else:
        raise ValueError(f"{width * 8}-bit samples")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return rate, data


def write_wav(path, rate, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.astype("<i2").tobytes())
    tmp.replace(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=pathlib.Path, help="where the packages were unpacked (dpkg -x)")
    ap.add_argument("--out", type=pathlib.Path)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.check:
        missing = missing_pins()
        print("\n".join(missing))
        sys.exit(1 if missing else 0)
    if args.root is None or args.out is None:
        ap.error("--root and --out are required")
    manifest = []
    for role, source, package, folder, pattern, fmt in SOURCES:
        base = args.root / folder
        files = sorted(base.glob(pattern))
        if not files:
            sys.exit(f"error: {package}: no {pattern} under {base} (was the package unpacked?)")
        seconds = 0.0
        count = 0
        for f in files:
            if fmt == "cat":
                clips = [(f"{f.stem}-{i:03d}", wave_bytes(c)) for i, c in enumerate(catalogue_clips(f))]
            else:
                try:
                    clips = [(str(f.relative_to(base).with_suffix("")).replace("/", "_"), decode(f, fmt))]
                except Exception as e:  # a broken recording is skipped, and said
                    print(f"warning: {f}: cannot decode ({e}); skipped", file=sys.stderr)
                    continue
            for name, (rate, data) in clips:
                if len(data) < rate // 4:
                    continue
                out = args.out / role / source / f"{name}.wav"
                write_wav(out, rate, data)
                manifest.append({"role": role, "source": source, "package": package,
                                 "file": str(out.relative_to(args.out)), "rate": rate,
                                 "seconds": round(len(data) / rate, 3)})
                seconds += len(data) / rate
                count += 1
        print(f"{role:12} {source:14} {count:5} files {seconds / 60:7.1f} min  ({package})", flush=True)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
