//! The Large Movie Review Dataset in its published layout:
//! `aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`, one review per file.

use std::path::{Path, PathBuf};

use attnkit_kernels::rng::SplitMix64;

use crate::error::{FormatError, Result, TextError};

/// Which part of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `train/`, minus the validation reviews.
    Train,
    /// A seeded, stratified part of `train/` (the same fraction of each class).
    Validation,
    /// `test/`.
    Test,
}

/// One review.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// The text as written (HTML line breaks included; [`crate::tokenize`] removes them).
    pub text: String,
    /// 1 = positive, 0 = negative.
    pub label: u8,
    /// The file it came from.
    pub path: PathBuf,
}

/// One review file's bytes as a [`Review`]: the text must be UTF-8; an error names
/// the file and the line of the first bad byte.
///
/// ```
/// use attnkit_text::parse_review;
/// let r = parse_review(b"Great film.<br />".to_vec(), "1_9.txt".into(), 1).unwrap();
/// assert_eq!(r.text, "Great film.<br />");
/// let e = parse_review(b"ok\n\xff".to_vec(), "2_1.txt".into(), 0).unwrap_err();
/// assert_eq!(e.to_string(), "2_1.txt:2: not UTF-8 (byte 3)");
/// ```
///
/// # Errors
///
/// [`TextError::Data`] naming `path` and the line of the first byte that is not UTF-8.
pub fn parse_review(bytes: Vec<u8>, path: PathBuf, label: u8) -> Result<Review> {
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        TextError::Data {
            path: path.clone(),
            line,
            why: format!("not UTF-8 (byte {at})"),
        }
    })?;
    Ok(Review { text, label, path })
}

fn read_class(dir: &Path, label: u8) -> Result<Vec<Review>> {
    let entries = std::fs::read_dir(dir).map_err(|source| {
        TextError::File(FormatError::Io {
            path: dir.to_path_buf(),
            source,
        })
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(|source| {
                TextError::File(FormatError::Io {
                    path: path.clone(),
                    source,
                })
            })?;
            parse_review(bytes, path, label)
        })
        .collect()
}

/// Reads one split of an `aclImdb/` folder (`root` is the folder holding `train/` and
/// `test/`). `validation_fraction` of each class of `train/` (chosen by `seed`) forms
/// [`Split::Validation`] and is left out of [`Split::Train`]. Reviews come sorted by
/// file name, negatives first.
///
/// # Errors
///
/// [`TextError::Config`] if the validation fraction is outside [0, 1);
/// [`TextError::File`] if the split's `pos/` or `neg/` folder is missing;
/// [`TextError::File`] or [`TextError::Data`] for a review file that cannot be read or is not
/// UTF-8.
pub fn load_reviews(
    root: &Path,
    split: Split,
    validation_fraction: f64,
    seed: u64,
) -> Result<Vec<Review>> {
    if !(0.0..1.0).contains(&validation_fraction) {
        return Err(TextError::Config(format!(
            "validation fraction must be in [0, 1), got {validation_fraction}"
        )));
    }
    let part = if split == Split::Test {
        "test"
    } else {
        "train"
    };
    let mut out = Vec::new();
    for (class, label) in [("neg", 0u8), ("pos", 1u8)] {
        let dir = root.join(part).join(class);
        if !dir.is_dir() {
            return Err(TextError::File(FormatError::Format {
                path: dir,
                why: format!(
                    "missing folder: expected the aclImdb layout {part}/{{pos,neg}}/*.txt under {}",
                    root.display()
                ),
            }));
        }
        let mut reviews = read_class(&dir, label)?;
        if split != Split::Test {
            // Stratified: pick the validation reviews of this class by a seeded shuffle.
            let n_val = (reviews.len() as f64 * validation_fraction).round() as usize;
            let mut order: Vec<usize> = (0..reviews.len()).collect();
            let mut rng = SplitMix64::new(seed ^ u64::from(label));
            rng.shuffle(&mut order);
            let mut is_val = vec![false; reviews.len()];
            for &i in &order[..n_val] {
                is_val[i] = true;
            }
            let keep_val = split == Split::Validation;
            let mut k = 0;
            reviews.retain(|_| {
                let keep = is_val[k] == keep_val;
                k += 1;
                keep
            });
        }
        out.extend(reviews);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy `aclImdb/` tree in a scratch folder removed when dropped.
    fn tree(tag: &str) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("attnkit-imdb-{tag}-"))
            .tempdir()
            .unwrap();
        let root = dir.path();
        for part in ["train", "test"] {
            for (class, n) in [("pos", 10), ("neg", 10)] {
                let d = root.join(part).join(class);
                std::fs::create_dir_all(&d).unwrap();
                for i in 0..n {
                    std::fs::write(
                        d.join(format!("{i}_7.txt")),
                        format!("{class} {part} {i}<br />ok"),
                    )
                    .unwrap();
                }
            }
        }
        dir
    }

    #[test]
    fn splits_are_disjoint_stratified_and_seeded() {
        let root_tmp = tree("splits");
        let root = root_tmp.path();
        let train = load_reviews(root, Split::Train, 0.2, 1).unwrap();
        let val = load_reviews(root, Split::Validation, 0.2, 1).unwrap();
        let test = load_reviews(root, Split::Test, 0.2, 1).unwrap();
        assert_eq!((train.len(), val.len(), test.len()), (16, 4, 20));
        assert_eq!(val.iter().filter(|r| r.label == 1).count(), 2);
        assert!(train.iter().all(|r| !val.iter().any(|v| v.path == r.path)));
        assert_eq!(val, load_reviews(root, Split::Validation, 0.2, 1).unwrap());
        assert_ne!(val, load_reviews(root, Split::Validation, 0.2, 2).unwrap());
    }

    #[test]
    fn bad_data_names_the_file() {
        let root_tmp = tree("bad");
        let root = root_tmp.path();
        let bad = root.join("test/pos/3_9.txt");
        std::fs::write(&bad, b"fine\nstill fine\nbroken \xff here").unwrap();
        let e = load_reviews(root, Split::Test, 0.0, 0)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("3_9.txt:3: not UTF-8 (byte 23)"), "{e}");
        std::fs::remove_dir_all(root.join("train/neg")).unwrap();
        let e = load_reviews(root, Split::Train, 0.1, 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("train/neg") && e.contains("missing folder"),
            "{e}"
        );
    }
}
