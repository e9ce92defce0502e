//! `attnkit data download` against an HTTP server on loopback serving small archives
//! in the published layouts (`aclImdb_v1.tar.gz`, `glove.6B.zip`): the files land,
//! `data check` reads them, a second run is served from the cache, and a wrong
//! checksum, a truncated body or a missing file fail with one line and keep nothing.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("attnkit-download-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the server answers for a path: a body, and the Content-Length it claims.
#[derive(Clone)]
struct Reply {
    body: Vec<u8>,
    claimed_len: usize,
}

/// A one-thread HTTP/1.1 server on 127.0.0.1; counts the requests it serves.
struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

fn serve(routes: HashMap<String, Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).unwrap_or(0) == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            count.fetch_add(1, Ordering::SeqCst);
            let head = String::from_utf8_lossy(&head);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            match routes.get(&path) {
                Some(r) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        r.claimed_len
                    );
                    let _ = stream.write_all(&r.body);
                }
                None => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    Server { base, requests }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A small aclImdb_v1.tar.gz: 6 reviews per class and split.
fn imdb_archive() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for split in ["train", "test"] {
        for (label, word) in [("pos", "great"), ("neg", "awful")] {
            for i in 0..6 {
                let text = format!("A {word} film, number {i}.<br /><br />The {word} end.");
                let mut header = tar::Header::new_gnu();
                header.set_size(text.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                tar.append_data(
                    &mut header,
                    format!(
                        "aclImdb/{split}/{label}/{i}_{}.txt",
                        if label == "pos" { 9 } else { 2 }
                    ),
                    text.as_bytes(),
                )
                .unwrap();
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// A small glove.6B.zip holding glove.6B.50d.txt (and a 100d file not asked for).
fn glove_archive() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for dim in [50, 100] {
        zip.start_file(format!("glove.6B.{dim}d.txt"), opts)
            .unwrap();
        for (w, word) in ["the", "great", "awful", "film", "a"].iter().enumerate() {
            let v: Vec<String> = (0..dim)
                .map(|i| format!("{:.3}", (w * dim + i) as f32 * 1e-3))
                .collect();
            writeln!(zip, "{word} {}", v.join(" ")).unwrap();
        }
    }
    zip.finish().unwrap().into_inner()
}

fn download(server: &Server, out: &Path, cache: &Path, extra: &[&str]) -> Output {
    let imdb = format!("{}/data/aclImdb_v1.tar.gz", server.base);
    let glove = format!("{}/data/glove.6B.zip", server.base);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_attnkit"));
    cmd.args(["data", "download", "--quiet", "--out"])
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .args(["--imdb-url", &imdb, "--glove-url", &glove])
        .args(extra);
    cmd.output().unwrap()
}

fn routes(imdb: &[u8], glove: &[u8]) -> HashMap<String, Reply> {
    HashMap::from([
        (
            "/data/aclImdb_v1.tar.gz".to_string(),
            Reply {
                body: imdb.to_vec(),
                claimed_len: imdb.len(),
            },
        ),
        (
            "/data/glove.6B.zip".to_string(),
            Reply {
                body: glove.to_vec(),
                claimed_len: glove.len(),
            },
        ),
    ])
}

#[test]
fn downloads_verifies_unpacks_and_caches() {
    let (imdb, glove) = (imdb_archive(), glove_archive());
    let server = serve(routes(&imdb, &glove));
    let dir = Scratch::new("ok");
    let (out, cache) = (dir.0.join("data"), dir.0.join("cache"));
    let sums = [
        "--imdb-sha256",
        &sha256(&imdb),
        "--glove-sha256",
        &sha256(&glove),
    ];
    let r = download(&server, &out, &cache, &sums);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    assert!(out.join("aclImdb/train/pos/0_9.txt").exists());
    assert!(out.join("glove.6B.50d.txt").exists());
    assert!(!out.join("glove.6B.100d.txt").exists());
    assert_eq!(
        std::fs::read(cache.join("aclImdb_v1.tar.gz")).unwrap(),
        imdb
    );
    // Nothing staged is left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // The files are what the loaders read.
    let check = Command::new(env!("CARGO_BIN_EXE_attnkit"))
        .args(["data", "check", "--min-freq", "1", "--data"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout.contains("test 12 (6 pos)"), "{stdout}");
    assert!(stdout.contains("5 words × 50"), "{stdout}");

    // A second run, into a new folder, is served from the cache.
    let out2 = dir.0.join("data2");
    let r = download(&server, &out2, &cache, &sums);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        2,
        "the cache was not used"
    );
    assert!(String::from_utf8_lossy(&r.stdout).contains("in the cache"));
    assert!(out2.join("glove.6B.50d.txt").exists());
}

/// Runs a failing download; it must exit 1 with one line containing `needle` and
/// leave neither the archive in the cache nor anything unpacked.
fn assert_fails(server: &Server, extra: &[&str], needle: &str) {
    let dir = Scratch::new("fail");
    let (out, cache) = (dir.0.join("data"), dir.0.join("cache"));
    let r = download(server, &out, &cache, extra);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "the cache kept a file"
    );
    assert!(!out.join("aclImdb").exists());
}

#[test]
fn bad_downloads_keep_nothing() {
    let (imdb, glove) = (imdb_archive(), glove_archive());
    let mut r = routes(&imdb, &glove);
    let server = serve(r.clone());
    let wrong = "0".repeat(64);
    assert_fails(
        &server,
        &["--imdb-sha256", &wrong, "--no-glove"],
        &format!(
            "checksum mismatch, expected SHA-256 {wrong}, got {}",
            sha256(&imdb)
        ),
    );

    // The server claims more bytes than it sends, then closes.
    r.get_mut("/data/aclImdb_v1.tar.gz").unwrap().claimed_len = imdb.len() + 1000;
    let truncating = serve(r);
    assert_fails(
        &truncating,
        &["--imdb-sha256", &sha256(&imdb), "--no-glove"],
        "aclImdb_v1.tar.gz",
    );

    let empty = serve(HashMap::new());
    assert_fails(&empty, &["--no-glove"], "404");
    assert_fails(
        &server,
        &["--imdb-sha256", "abc", "--no-glove"],
        "expected a SHA-256 of 64 hex digits",
    );
}
