//! A vocabulary with a minimum frequency and a maximum size.

use std::collections::HashMap;

/// Word ↔ id. Id 0 is `<pad>`, id 1 is `<unk>`; then words by decreasing frequency
/// (ties alphabetical, so a corpus always gives the same ids).
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    words: Vec<String>,
    index: HashMap<String, usize>,
}

/// Id of the padding token.
pub const PAD: usize = 0;
/// Id of unknown words.
pub const UNK: usize = 1;

impl Vocabulary {
    /// Builds a vocabulary from tokenised documents: words seen at least `min_freq` times,
    /// at most `max_size` ids in all (the two special tokens included).
    pub fn build<'a>(
        documents: impl IntoIterator<Item = &'a [String]>,
        min_freq: usize,
        max_size: usize,
    ) -> Self {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for doc in documents {
            for w in doc {
                *counts.entry(w.as_str()).or_default() += 1;
            }
        }
        let mut ranked: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= min_freq.max(1))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut words = vec!["<pad>".to_string(), "<unk>".to_string()];
        words.extend(
            ranked
                .into_iter()
                .take(max_size.saturating_sub(2))
                .map(|(w, _)| w.to_string()),
        );
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i))
            .collect();
        Self { words, index }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether only the special tokens are present.
    pub fn is_empty(&self) -> bool {
        self.words.len() <= 2
    }

    /// The id of `word` (`UNK` if absent).
    pub fn id(&self, word: &str) -> usize {
        self.index.get(word).copied().unwrap_or(UNK)
    }

    /// The word of `id`.
    pub fn word(&self, id: usize) -> Option<&str> {
        self.words.get(id).map(String::as_str)
    }

    /// Ids of `tokens`, truncated to `max_len` and padded with `PAD` to exactly `max_len`.
    pub fn encode(&self, tokens: &[String], max_len: usize) -> Vec<usize> {
        let mut ids: Vec<usize> = tokens.iter().take(max_len).map(|t| self.id(t)).collect();
        ids.resize(max_len, PAD);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn frequency_size_and_encoding() {
        let docs = [doc("a b b c c c"), doc("c d")];
        let v = Vocabulary::build(docs.iter().map(|d| d.as_slice()), 2, 10);
        assert_eq!(v.len(), 4); // <pad>, <unk>, c (4), b (2); a and d appear once
        assert_eq!((v.id("c"), v.id("b"), v.id("a")), (2, 3, UNK));
        assert_eq!(v.encode(&doc("b c a"), 5), [3, 2, UNK, PAD, PAD]);
        assert_eq!(v.encode(&doc("b c a"), 2), [3, 2]);
        let small = Vocabulary::build(docs.iter().map(|d| d.as_slice()), 1, 3);
        assert_eq!(small.len(), 3);
        assert_eq!(small.word(2), Some("c"));
    }
}
