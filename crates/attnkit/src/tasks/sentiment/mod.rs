//! IMDB sentiment classification: word embeddings (GloVe or learned) and one of the
//! recurrent baselines, attention pooling or Aaren, then a linear classifier over two
//! classes ([`SentimentNet`]); [`SentimentTraining`] is the task the training loop runs.

use serde::{Deserialize, Serialize};

use crate::data::{Review, Vocabulary, tokenize};
use crate::train::OptimizerConfig;

mod network;
mod training;

pub use network::SentimentNet;
pub use training::SentimentTraining;

/// The sequence model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentModel {
    /// Elman RNN (last hidden state).
    Rnn,
    /// LSTM.
    Lstm,
    /// GRU.
    Gru,
    /// Bidirectional RNN (both final states).
    Birnn,
    /// Bidirectional LSTM.
    Bilstm,
    /// Bidirectional GRU.
    Bigru,
    /// Multi-head attention pooling with a learned query over the embeddings.
    Attention,
    /// An Aaren layer over the embeddings, read at each review's last token.
    Aaren,
}

impl SentimentModel {
    /// Every model, in the order of the comparison table.
    pub const ALL: [Self; 8] = [
        Self::Rnn,
        Self::Lstm,
        Self::Gru,
        Self::Birnn,
        Self::Bilstm,
        Self::Bigru,
        Self::Attention,
        Self::Aaren,
    ];
}

/// How words become vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingKind {
    /// GloVe vectors (fine-tuned); unknown words N(0, 0.1²).
    Glove,
    /// One-hot words: a one-hot vector times the first layer's input matrix is a
    /// trainable lookup table, so this is a randomly initialised trainable embedding.
    Onehot,
}

/// Which tokens of a review longer than `max_len` are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepTokens {
    /// The first `max_len` (the review's opening).
    #[default]
    First,
    /// The last `max_len` (where a review usually gives its verdict).
    Last,
}

impl std::str::FromStr for KeepTokens {
    type Err = crate::AttnError;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "first" => Ok(Self::First),
            "last" => Ok(Self::Last),
            other => Err(crate::AttnError::Config(format!(
                "keep must be `first` or `last`, got `{other}`"
            ))),
        }
    }
}

/// A sentiment run's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentConfig {
    /// The sequence model.
    pub model: SentimentModel,
    /// The embedding.
    pub embedding: EmbeddingKind,
    /// Hidden width.
    pub hidden: usize,
    /// Reviews are truncated to this many tokens.
    pub max_len: usize,
    /// Reviews per step.
    pub batch_size: usize,
    /// Adam.
    pub optimizer: OptimizerConfig,
    /// Seed.
    pub seed: u64,
    /// Dropout probability on the word vectors and on the features the classifier reads
    /// (training only). 0 in checkpoints written before it existed.
    #[serde(default)]
    pub dropout: f64,
    /// Which tokens of a longer review are kept. `first` in checkpoints written before
    /// it existed.
    #[serde(default)]
    pub keep: KeepTokens,
}

/// Encoded reviews: token ids `[N, max_len]`, true lengths, labels.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Row-major ids.
    pub ids: Vec<i64>,
    /// Lengths (≥ 1).
    pub lengths: Vec<usize>,
    /// 0/1.
    pub labels: Vec<i64>,
}

impl Encoded {
    /// Checks that the three vectors describe the same reviews at `max_len` tokens each,
    /// with every length in `1..=max_len`.
    ///
    /// # Errors
    /// [`AttnError::Value`](crate::AttnError::Value) naming `what` and the sizes found.
    pub fn check(&self, what: &str, max_len: usize) -> crate::Result<()> {
        let n = self.labels.len();
        let ok = self.lengths.len() == n
            && Some(self.ids.len()) == n.checked_mul(max_len)
            && self.lengths.iter().all(|&l| (1..=max_len).contains(&l));
        if ok {
            return Ok(());
        }
        Err(crate::AttnError::Value {
            what: what.to_string(),
            why: format!(
                "expected {n} reviews of {max_len} ids with lengths in 1..={max_len}, got {} ids \
                 and {} lengths",
                self.ids.len(),
                self.lengths.len()
            ),
        })
    }
}

/// Tokenises and encodes `reviews` with `vocab`, truncating to their first `max_len`
/// tokens.
pub fn encode(reviews: &[Review], vocab: &Vocabulary, max_len: usize) -> Encoded {
    encode_keeping(reviews, vocab, max_len, KeepTokens::First)
}

/// [`encode`], keeping the first or the last `max_len` tokens of longer reviews.
pub fn encode_keeping(
    reviews: &[Review],
    vocab: &Vocabulary,
    max_len: usize,
    keep: KeepTokens,
) -> Encoded {
    let mut out = Encoded {
        ids: Vec::with_capacity(reviews.len() * max_len),
        lengths: Vec::with_capacity(reviews.len()),
        labels: Vec::with_capacity(reviews.len()),
    };
    for r in reviews {
        let tokens = tokenize(&r.text);
        let tokens = match keep {
            KeepTokens::First => &tokens[..],
            KeepTokens::Last => &tokens[tokens.len().saturating_sub(max_len)..],
        };
        out.lengths.push(tokens.len().clamp(1, max_len));
        out.ids
            .extend(vocab.encode(tokens, max_len).into_iter().map(|i| i as i64));
        out.labels.push(i64::from(r.label));
    }
    out
}
