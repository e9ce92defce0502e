//! Speech enhancement: a spectral mask predicted frame by frame by a causal temporal
//! model — Aaren (attention as an RNN), a GRU or causal multi-head attention, the same
//! width and about the same size.
//!
//! The signal path: 16 kHz audio → STFT (20 ms sqrt-Hann frames every 10 ms, 161 bins;
//! [`attnkit_audio::stft`]) → per-bin log power ([`features`]) → linear 161 → E with
//! ReLU → the temporal layers → linear E → 161 with a sigmoid: a gain in (0, 1) per
//! bin → the noisy spectrum times the gain → inverse STFT. Every layer only sees the
//! past, so the same network runs on a whole file ([`enhance_signal`]) or one 10 ms
//! block at a time ([`EnhancerStream`]), with the same samples. Training
//! ([`EnhanceTraining`]) minimises the negative SI-SDR of the enhanced waveform
//! (the inverse STFT is part of the graph, as two matrix products and an overlap-add).

use serde::{Deserialize, Serialize};

use crate::error::{AttnError, Result};
use crate::train::OptimizerConfig;

mod inference;
mod network;
mod stream;
mod training;

pub use inference::{enhance_batch, enhance_signal};
pub use network::{CONFIG_KEY, Enhancer};
pub use stream::EnhancerStream;
pub use training::{EnhanceData, EnhanceTraining};

/// Frequency bins of the 320-point STFT.
pub const BINS: usize = 161;
/// Samples per block (10 ms at 16 kHz): the STFT hop.
pub const HOP: usize = 160;

/// The temporal layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TemporalModel {
    /// Aaren encoder blocks (Aaren + feed-forward, residuals, LayerNorm): attention of a
    /// learned query over every past frame, with a state of fixed size.
    #[default]
    Aaren,
    /// A stacked GRU.
    Gru,
    /// Causal Transformer encoder layers (multi-head self-attention over every past
    /// frame; its key/value cache grows with the stream).
    Attention,
}

impl TemporalModel {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aaren => "aaren",
            Self::Gru => "gru",
            Self::Attention => "attention",
        }
    }
}

impl std::str::FromStr for TemporalModel {
    type Err = AttnError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "aaren" => Ok(Self::Aaren),
            "gru" => Ok(Self::Gru),
            "attention" => Ok(Self::Attention),
            other => Err(AttnError::Config(format!(
                "model must be `aaren`, `gru` or `attention`, got `{other}`"
            ))),
        }
    }
}

/// Everything that defines an enhancement run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnhanceConfig {
    /// The temporal layers. Default: Aaren.
    pub model: TemporalModel,
    /// Width E of every layer. Default: 128.
    pub width: usize,
    /// Temporal layers. Default: 2.
    pub layers: usize,
    /// Heads (Aaren and attention). Default: 4.
    pub heads: usize,
    /// Hidden width of the feed-forward networks (Aaren and attention). Default: 128.
    pub ff_dim: usize,
    /// Frames per training segment (10 ms each). Default: 200 (2 s).
    pub segment_frames: usize,
    /// Segments per step. Default: 16.
    pub batch_size: usize,
    /// Default: Adam, lr 1e-3.
    pub optimizer: OptimizerConfig,
    /// Training SNRs in dB, drawn uniformly. Default: −5 to 15.
    pub snr_db: (f64, f64),
    /// Validation pairs scored at each logging point (of the data's fixed ones).
    /// Default: 100.
    pub validation_pairs: usize,
    /// Seed of the weights and the mixtures.
    pub seed: u64,
    /// Weights the run starts from (a `.safetensors` file of `attnkit train enhance`)
    /// instead of a random initialisation: a second stage at a lower learning rate.
    /// Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// Weight of a compressed-spectrum distance added to the negative SI-SDR: the mean
    /// over bins of (|Ŝ|ᶜ − |S|ᶜ)² plus |Ŝ|ᶜe^{i∠Ŝ} − |S|ᶜe^{i∠S}|², c = 0.3, between the
    /// masked and the clean spectrum. SI-SDR weighs loud samples most; the compressed
    /// spectrum also weighs the quiet bins, which PESQ hears. Default: 0 (SI-SDR only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spectral_weight: f64,
    /// Aaren only, beyond the paper: a learned forgetting rate per head, so that old
    /// frames fade (time constants 0.5, 2, 8 and 32 s at the start, learned from there)
    /// while the state keeps its fixed size. Default: false (the paper's Aaren).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forgetting: bool,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for EnhanceConfig {
    fn default() -> Self {
        Self {
            model: TemporalModel::Aaren,
            width: 128,
            layers: 2,
            heads: 4,
            ff_dim: 128,
            segment_frames: 200,
            batch_size: 16,
            optimizer: OptimizerConfig::Adam { lr: 1e-3 },
            snr_db: (-5.0, 15.0),
            validation_pairs: 100,
            seed: 0,
            init: None,
            spectral_weight: 0.0,
            forgetting: false,
        }
    }
}

impl EnhanceConfig {
    /// Checks the sizes.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] naming the value out of range.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.layers == 0 || self.batch_size == 0 || self.segment_frames < 2 {
            return Err(AttnError::Config(format!(
                "width, layers and batch_size must be at least 1 and segment_frames at least 2, \
                 got {}, {}, {}, {}",
                self.width, self.layers, self.batch_size, self.segment_frames
            )));
        }
        if self.model != TemporalModel::Gru && (self.heads == 0 || self.width % self.heads != 0) {
            return Err(AttnError::Config(format!(
                "heads must divide the width, got {} heads for width {}",
                self.heads, self.width
            )));
        }
        if self.forgetting && self.model != TemporalModel::Aaren {
            return Err(AttnError::Config(format!(
                "forgetting is a variant of Aaren, but the model is `{}`",
                self.model.name()
            )));
        }
        if !(self.spectral_weight.is_finite() && self.spectral_weight >= 0.0) {
            return Err(AttnError::Config(format!(
                "the spectral weight must be finite and at least 0, got {}",
                self.spectral_weight
            )));
        }
        if !(self.snr_db.0.is_finite()
            && self.snr_db.1.is_finite()
            && self.snr_db.0 <= self.snr_db.1)
        {
            return Err(AttnError::Config(format!(
                "the SNR range must be finite with low ≤ high, got {:?}",
                self.snr_db
            )));
        }
        Ok(())
    }
}

/// The network's input for one bin: (log₁₀(|X|² + 10⁻¹⁰) + 5) / 3, about −1.7 (silence)
/// to 2 (a loud tone).
pub fn feature(re: f32, im: f32) -> f32 {
    ((re * re + im * im + 1e-10).log10() + 5.0) / 3.0
}

/// [`feature`] of every bin of a spectrogram's frames.
pub fn features(re: &[f32], im: &[f32]) -> Vec<f32> {
    re.iter().zip(im).map(|(&r, &i)| feature(r, i)).collect()
}
