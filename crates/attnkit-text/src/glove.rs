//! GloVe vectors in the published text format: one word per line followed by its N
//! numbers, separated by single spaces (`the 0.418 0.24968 …`). Any N; the first line
//! fixes it.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use attnkit_kernels::rng::SplitMix64;

use super::vocabulary::{PAD, Vocabulary};
use crate::error::{FormatError, Result, TextError};

/// Word vectors.
#[derive(Debug, Clone)]
pub struct Glove {
    dim: usize,
    index: HashMap<String, usize>,
    vectors: Vec<f32>,
}

/// What a word without a GloVe vector gets in an embedding matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Oov {
    /// All zeros.
    Zeros,
    /// N(0, std²) with a seeded generator.
    Random {
        /// Standard deviation.
        std: f64,
        /// Seed.
        seed: u64,
    },
}

impl Glove {
    /// Reads a GloVe text file. Every line must hold a word and exactly as many numbers as
    /// the first line; the error names the file and the line.
    ///
    /// # Errors
    ///
    /// [`TextError::File`] if the file cannot be read; [`TextError::Data`] naming the file
    /// and line of the first malformed line (a word without numbers, a number that does not
    /// parse, a dimension unlike the first line's).
    pub fn load(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|source| {
            TextError::File(FormatError::Io {
                path: path.to_path_buf(),
                source,
            })
        })?;
        Self::from_reader(std::io::BufReader::new(file), path)
    }

    /// Reads the format from `reader`; `path` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`Glove::load`], with `path` as the file's name.
    pub fn from_reader(mut reader: impl BufRead, path: &Path) -> Result<Self> {
        let err = |line: usize, why: String| TextError::Data {
            path: path.to_path_buf(),
            line,
            why,
        };
        let mut dim = 0;
        let mut index = HashMap::new();
        let mut vectors = Vec::new();
        let mut bytes = Vec::new();
        let mut line_no = 0;
        loop {
            bytes.clear();
            let n = reader.read_until(b'\n', &mut bytes).map_err(|source| {
                TextError::File(FormatError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            })?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let line = std::str::from_utf8(&bytes)
                .map_err(|e| err(line_no, format!("not UTF-8 (byte {})", e.valid_up_to())))?
                .trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split(' ');
            let word = parts.next().unwrap_or_default();
            if word.is_empty() {
                return Err(err(line_no, "expected a word first, found a space".into()));
            }
            let start = vectors.len();
            for (k, p) in parts.enumerate() {
                let v: f32 = p.parse().map_err(|_| {
                    err(
                        line_no,
                        format!("number {} of `{word}` is not a number: `{p}`", k + 1),
                    )
                })?;
                if !v.is_finite() {
                    return Err(err(line_no, format!("number {} of `{word}` is {v}", k + 1)));
                }
                vectors.push(v);
            }
            let count = vectors.len() - start;
            if dim == 0 {
                if count == 0 {
                    return Err(err(line_no, format!("`{word}` has no numbers")));
                }
                dim = count;
            } else if count != dim {
                return Err(err(
                    line_no,
                    format!("`{word}` has {count} numbers, expected {dim} (as on the first line)"),
                ));
            }
            // The first vector of a repeated word wins (some GloVe releases repeat words).
            if index.contains_key(word) {
                vectors.truncate(start);
            } else {
                index.insert(word.to_string(), start / dim);
            }
        }
        if dim == 0 {
            return Err(err(line_no.max(1), "no vectors in the file".into()));
        }
        Ok(Self {
            dim,
            index,
            vectors,
        })
    }

    /// Vector width N.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no words.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The vector of `word`.
    pub fn get(&self, word: &str) -> Option<&[f32]> {
        self.index
            .get(word)
            .map(|&i| &self.vectors[i * self.dim..(i + 1) * self.dim])
    }

    /// An embedding matrix `[vocab.len(), dim]` for `vocab`: GloVe rows where the word has
    /// one, `oov` otherwise, zeros for padding. Returns it and how many words were found.
    pub fn embedding_matrix(&self, vocab: &Vocabulary, oov: Oov) -> (Vec<f32>, usize) {
        let mut rng = match oov {
            Oov::Random { seed, .. } => Some(SplitMix64::new(seed)),
            Oov::Zeros => None,
        };
        let mut out = Vec::with_capacity(vocab.len() * self.dim);
        let mut found = 0;
        for id in 0..vocab.len() {
            let word = vocab.word(id).unwrap_or_default();
            match self.get(word) {
                Some(v) if id != PAD => {
                    out.extend_from_slice(v);
                    found += 1;
                }
                _ => match (&mut rng, oov) {
                    (Some(rng), Oov::Random { std, .. }) if id != PAD => {
                        out.extend((0..self.dim).map(|_| (rng.normal() * std) as f32));
                    }
                    _ => out.extend(std::iter::repeat_n(0.0, self.dim)),
                },
            }
        }
        (out, found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<Glove> {
        Glove::from_reader(text, Path::new("glove.txt"))
    }

    #[test]
    fn reads_any_dimension_and_builds_a_matrix() {
        let g = parse(b"the 0.5 -1 2\ncat 1e-3 2.5 -3\n").unwrap();
        assert_eq!((g.dim(), g.len()), (3, 2));
        assert_eq!(g.get("cat"), Some(&[1e-3, 2.5, -3.0][..]));
        let docs = [vec!["cat".to_string(), "dog".to_string()]];
        let vocab = Vocabulary::build(docs.iter().map(|d| d.as_slice()), 1, 10);
        let (m, found) = g.embedding_matrix(&vocab, Oov::Zeros);
        assert_eq!(found, 1);
        assert_eq!(m.len(), vocab.len() * 3);
        assert_eq!(
            &m[vocab.id("cat") * 3..vocab.id("cat") * 3 + 3],
            &[1e-3, 2.5, -3.0]
        );
        assert!(m[..3].iter().all(|&v| v == 0.0), "padding row is zero");
    }

    /// The default dimension (300), on a generated file: 2,000 words × 300 numbers.
    #[test]
    fn reads_a_generated_300d_file() {
        let mut rng = SplitMix64::new(300);
        let mut text = String::new();
        let mut want = Vec::new();
        for w in 0..2000 {
            let v: Vec<f32> = (0..300).map(|_| rng.normal() as f32).collect();
            text.push_str(&format!("w{w}"));
            for x in &v {
                text.push_str(&format!(" {x}"));
            }
            text.push('\n');
            want.push(v);
        }
        let dir = tempfile::Builder::new()
            .prefix("attnkit-glove300-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("glove.300d.txt");
        std::fs::write(&path, text).unwrap();
        let g = Glove::load(&path).unwrap();
        assert_eq!((g.dim(), g.len()), (300, 2000));
        assert_eq!(g.get("w1234").unwrap(), &want[1234][..]);
        assert!(g.get("absent").is_none());
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let e = parse(b"the 1 2 3\ncat 1 2\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "glove.txt:2: `cat` has 2 numbers, expected 3 (as on the first line)"
        );
        let e = parse(b"the 1 2\ncat 1 x\n").unwrap_err().to_string();
        assert_eq!(e, "glove.txt:2: number 2 of `cat` is not a number: `x`");
        let e = parse(b"the 1 2\n\xff\xfe 1 2\n").unwrap_err().to_string();
        assert!(e.starts_with("glove.txt:2: not UTF-8"), "{e}");
        let e = parse(b"").unwrap_err().to_string();
        assert_eq!(e, "glove.txt:1: no vectors in the file");
        let e = parse(b"lonely\n").unwrap_err().to_string();
        assert_eq!(e, "glove.txt:1: `lonely` has no numbers");
    }
}
