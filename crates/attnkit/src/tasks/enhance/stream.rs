//! The enhancer as a stream: one 10 ms block in, one out, every buffer allocated once —
//! what a small device runs. Aaren layers keep their fixed-size state (H·(d + 2)
//! numbers each), GRU layers their hidden vector; nothing grows with the stream.

use attnkit_audio::stft::{Stft, StreamingStft};

use super::{BINS, EnhanceConfig, Enhancer, HOP, TemporalModel, feature};
use crate::aaren::TokenStream;
use crate::error::{AttnError, Result};
use crate::store::{TensorStore, TorchWeights};

/// y = W x + b with W `[out, in]` row-major.
#[derive(Debug, Clone)]
struct HostLinear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
}

/// Σ a_i b_i with eight running sums (so the compiler can keep them in one vector).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

impl HostLinear {
    fn from_store(store: &TensorStore, prefix: &str) -> Result<Self> {
        let w = store.require(&format!("{prefix}weight"))?;
        let b = store.require(&format!("{prefix}bias"))?;
        Ok(Self {
            inputs: w.shape[1],
            weight: w.data.clone(),
            bias: b.data.clone(),
        })
    }

    fn apply(&self, x: &[f32], out: &mut [f32]) {
        for (o, (row, b)) in out
            .iter_mut()
            .zip(self.weight.chunks_exact(self.inputs).zip(&self.bias))
        {
            *o = dot(row, x) + b;
        }
    }

    fn bytes(&self) -> usize {
        4 * (self.weight.len() + self.bias.len())
    }
}

#[derive(Debug, Clone)]
struct HostLayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl HostLayerNorm {
    fn from_store(store: &TensorStore, prefix: &str) -> Result<Self> {
        Ok(Self {
            weight: store.require(&format!("{prefix}weight"))?.data.clone(),
            bias: store.require(&format!("{prefix}bias"))?.data.clone(),
            eps: 1e-5,
        })
    }

    fn apply(&self, x: &mut [f32]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + self.eps).sqrt();
        for ((v, g), b) in x.iter_mut().zip(&self.weight).zip(&self.bias) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[derive(Debug, Clone)]
enum HostLayer {
    Aaren {
        aaren: Box<TokenStream<f32>>,
        linear1: HostLinear,
        linear2: HostLinear,
        norm1: HostLayerNorm,
        norm2: HostLayerNorm,
        hidden: Vec<f32>,
        ff: Vec<f32>,
    },
    Gru {
        w_ih: HostLinear,
        w_hh: HostLinear,
        h: Vec<f32>,
        gx: Vec<f32>,
        gh: Vec<f32>,
    },
}

impl HostLayer {
    /// Replaces `x` (`[E]`) by the layer's output for this frame.
    fn step(&mut self, x: &mut [f32]) -> Result<()> {
        match self {
            Self::Aaren {
                aaren,
                linear1,
                linear2,
                norm1,
                norm2,
                hidden,
                ff,
            } => {
                let mixed = aaren.push(x, false)?;
                x.iter_mut().zip(mixed).for_each(|(v, m)| *v += m);
                norm1.apply(x);
                linear1.apply(x, hidden);
                hidden.iter_mut().for_each(|v| *v = v.max(0.0));
                linear2.apply(hidden, ff);
                x.iter_mut().zip(ff.iter()).for_each(|(v, f)| *v += f);
                norm2.apply(x);
            }
            Self::Gru {
                w_ih,
                w_hh,
                h,
                gx,
                gh,
            } => {
                // PyTorch's GRU: gates r, z, n.
                let n = h.len();
                w_ih.apply(x, gx);
                w_hh.apply(h, gh);
                for i in 0..n {
                    let r = sigmoid(gx[i] + gh[i]);
                    let z = sigmoid(gx[n + i] + gh[n + i]);
                    let c = (gx[2 * n + i] + r * gh[2 * n + i]).tanh();
                    h[i] = (1.0 - z) * c + z * h[i];
                }
                x.copy_from_slice(h);
            }
        }
        Ok(())
    }

    /// Bytes of what changes from frame to frame (the recurrent state).
    fn state_bytes(&self) -> usize {
        match self {
            Self::Aaren { aaren, .. } => 4 * aaren.state().len(),
            Self::Gru { h, .. } => 4 * h.len(),
        }
    }

    /// Bytes of the per-frame scratch buffers.
    fn scratch_bytes(&self) -> usize {
        match self {
            Self::Aaren { hidden, ff, .. } => 4 * (hidden.len() + ff.len()),
            Self::Gru { gx, gh, .. } => 4 * (gx.len() + gh.len()),
        }
    }

    fn weight_bytes(&self) -> usize {
        match self {
            Self::Aaren {
                linear1, linear2, ..
            } => {
                // The folded Aaren weights: key·query [H, E], value and output [E, E].
                let e = linear2.bias.len();
                linear1.bytes() + linear2.bytes() + 4 * (2 * e * e + 2 * e) + 16 * e
            }
            Self::Gru { w_ih, w_hh, .. } => w_ih.bytes() + w_hh.bytes(),
        }
    }
}

/// The enhancer run one 10 ms block at a time (see the module docs).
///
/// ```no_run
/// # use attnkit::tasks::enhance::{EnhanceConfig, Enhancer, EnhancerStream};
/// # let device = burn::prelude::Device::default();
/// let config = EnhanceConfig::default();
/// let model = Enhancer::new(&config, &device).unwrap();
/// let mut stream = EnhancerStream::new(&model, &config).unwrap();
/// let block = [0.0f32; 160];
/// let out = stream.push(&block).unwrap(); // the previous block, enhanced
/// assert_eq!(out.len(), 160);
/// ```
#[derive(Debug, Clone)]
pub struct EnhancerStream {
    stft: StreamingStft,
    input: HostLinear,
    layers: Vec<HostLayer>,
    output: HostLinear,
    features: Vec<f32>,
    x: Vec<f32>,
    gains: Vec<f32>,
    blocks: u64,
}

impl EnhancerStream {
    /// Folds `model`'s weights (the network `config` describes) for streaming.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] for the attention model: its key/value cache grows with
    /// every frame, so it has no fixed-memory stream.
    pub fn new(model: &Enhancer, config: &EnhanceConfig) -> Result<Self> {
        let mut store = TensorStore::new("the enhancer");
        model.save_weights(&mut store, "");
        let e = config.width;
        let mut layers = Vec::new();
        match config.model {
            TemporalModel::Aaren => {
                let encoder = model
                    .aaren
                    .as_ref()
                    .ok_or_else(|| AttnError::Config("the model has no Aaren layers".into()))?;
                for (i, block) in encoder.layers.iter().enumerate() {
                    let p = format!("aaren.layers.{i}.");
                    layers.push(HostLayer::Aaren {
                        aaren: Box::new(TokenStream::new(&block.aaren)?),
                        linear1: HostLinear::from_store(&store, &format!("{p}linear1."))?,
                        linear2: HostLinear::from_store(&store, &format!("{p}linear2."))?,
                        norm1: HostLayerNorm::from_store(&store, &format!("{p}norm1."))?,
                        norm2: HostLayerNorm::from_store(&store, &format!("{p}norm2."))?,
                        hidden: vec![0.0; config.ff_dim],
                        ff: vec![0.0; e],
                    });
                }
            }
            TemporalModel::Gru => {
                for l in 0..config.layers {
                    let linear = |w: &str, b: &str| -> Result<HostLinear> {
                        let weight = store.require(&format!("gru.{w}_l{l}"))?;
                        Ok(HostLinear {
                            inputs: weight.shape[1],
                            weight: weight.data.clone(),
                            bias: store.require(&format!("gru.{b}_l{l}"))?.data.clone(),
                        })
                    };
                    layers.push(HostLayer::Gru {
                        w_ih: linear("weight_ih", "bias_ih")?,
                        w_hh: linear("weight_hh", "bias_hh")?,
                        h: vec![0.0; e],
                        gx: vec![0.0; 3 * e],
                        gh: vec![0.0; 3 * e],
                    });
                }
            }
            TemporalModel::Attention => {
                return Err(AttnError::Config(
                    "causal attention has no fixed-memory stream (its key/value cache grows \
                     with every frame): stream an `aaren` or `gru` model, or enhance files"
                        .into(),
                ));
            }
        }
        Ok(Self {
            stft: StreamingStft::new(Stft::speech()),
            input: HostLinear::from_store(&store, "input.")?,
            layers,
            output: HostLinear::from_store(&store, "output.")?,
            features: vec![0.0; BINS],
            x: vec![0.0; e],
            gains: vec![0.0; BINS],
            blocks: 0,
        })
    }

    /// Takes the next 160 samples and returns the 160 enhanced samples of the block
    /// before it (after the first push: silence, the STFT's padding).
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `block` does not hold 160 samples.
    pub fn push(&mut self, block: &[f32]) -> Result<&[f32]> {
        if block.len() != HOP {
            return Err(AttnError::Shape {
                what: "block".into(),
                expected: format!("[{HOP}]"),
                got: vec![block.len()],
            });
        }
        let spectrum = self
            .stft
            .push(block)
            .map_err(|e| AttnError::Config(e.to_string()))?;
        for (f, c) in self.features.iter_mut().zip(spectrum.iter()) {
            *f = feature(c.re, c.im);
        }
        self.network_step()?;
        for (c, g) in self.stft.spectrum_mut().iter_mut().zip(&self.gains) {
            *c *= *g;
        }
        self.blocks += 1;
        Ok(self.stft.pull())
    }

    /// The network alone on one frame: `features` `[161]` ([`feature`] of each bin) to
    /// gains `[161]` in (0, 1), advancing every layer's state — what the exported ONNX
    /// cell computes.
    ///
    /// # Errors
    ///
    /// [`AttnError::Shape`] if `features` does not hold 161 numbers.
    pub fn step_features(&mut self, features: &[f32]) -> Result<&[f32]> {
        if features.len() != BINS {
            return Err(AttnError::Shape {
                what: "features".into(),
                expected: format!("[{BINS}]"),
                got: vec![features.len()],
            });
        }
        self.features.copy_from_slice(features);
        self.network_step()?;
        Ok(&self.gains)
    }

    /// `self.features` → `self.gains`, through every layer.
    fn network_step(&mut self) -> Result<()> {
        self.input.apply(&self.features, &mut self.x);
        self.x.iter_mut().for_each(|v| *v = v.max(0.0));
        for layer in &mut self.layers {
            layer.step(&mut self.x)?;
        }
        self.output.apply(&self.x, &mut self.gains);
        self.gains.iter_mut().for_each(|g| *g = sigmoid(*g));
        Ok(())
    }

    /// Blocks pushed so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Bytes of the recurrent state carried from frame to frame (Aaren's m, c, a per
    /// head; GRU's hidden vectors).
    pub fn recurrent_state_bytes(&self) -> usize {
        self.layers.iter().map(HostLayer::state_bytes).sum()
    }

    /// Bytes of everything that is not a weight: the recurrent state, the STFT's
    /// buffers and the per-frame scratch — constant for the stream's whole life.
    pub fn state_bytes(&self) -> usize {
        self.recurrent_state_bytes()
            + self.stft.state_bytes()
            + self
                .layers
                .iter()
                .map(HostLayer::scratch_bytes)
                .sum::<usize>()
            + 4 * (self.features.len() + self.x.len() + self.gains.len())
    }

    /// Bytes of the weights the stream holds.
    pub fn weight_bytes(&self) -> usize {
        self.input.bytes()
            + self.output.bytes()
            + self
                .layers
                .iter()
                .map(HostLayer::weight_bytes)
                .sum::<usize>()
    }

    /// Enhances a whole signal through the stream, with the file mode's alignment: the
    /// first output block is dropped, one block of zeros flushes the last, the output is
    /// cut to the input's length.
    ///
    /// # Errors
    ///
    /// None in practice (every block is 160 samples).
    pub fn enhance(&mut self, signal: &[f32]) -> Result<Vec<f32>> {
        let blocks = signal.len().div_ceil(HOP);
        let mut out = Vec::with_capacity((blocks + 1) * HOP);
        let mut block = [0.0f32; HOP];
        for j in 0..=blocks {
            for (i, b) in block.iter_mut().enumerate() {
                *b = signal.get(j * HOP + i).copied().unwrap_or(0.0);
            }
            let y = self.push(&block)?;
            if j > 0 {
                out.extend_from_slice(y);
            }
        }
        out.truncate(signal.len());
        Ok(out)
    }
}
