//! Training the enhancer: mixtures drawn on the fly (or segments of clean/noisy pairs),
//! the negative SI-SDR of the enhanced waveform as the loss.

use std::path::Path;

use attnkit_audio::corpus::{Clip, MixtureSampler, Pair, load_folder, load_pairs};
use attnkit_audio::metrics::si_sdr;
use attnkit_audio::stft::Stft;
use attnkit_kernels::rng::SplitMix64;
use burn::prelude::*;
use serde_json::{Value, json};

use super::{BINS, EnhanceConfig, Enhancer, HOP, enhance_batch, features};
use crate::error::{AttnError, Result};
use crate::train::{Checkpoint, CheckpointHeader, Metrics, Optimizer, TrainingTask, header_for};

/// Where training segments come from.
#[derive(Debug, Clone)]
pub enum EnhanceData {
    /// Speech and recorded noise mixed on the fly (with babble and synthetic noise).
    Mixing {
        /// Speech clips.
        speech: Vec<Clip>,
        /// Noise clips.
        noise: Vec<Clip>,
    },
    /// Segments of fixed clean/noisy pairs (VoiceBank+DEMAND and the like).
    Pairs(Vec<Pair>),
}

fn audio_error(e: attnkit_audio::AudioError) -> AttnError {
    AttnError::Config(e.to_string())
}

impl EnhanceData {
    /// Loads training data and validation pairs from `dir`: the layout
    /// `attnkit data prepare-speech` writes (`speech/train`, `noise/train`,
    /// `valid/{clean,noisy}`), or VoiceBank+DEMAND's (`clean_trainset_wav/`,
    /// `noisy_trainset_wav/`; every 20th pair held out for validation), or any
    /// `clean/` and `noisy/` folder pair (likewise).
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] naming the folder when it has none of these layouts, or a
    /// file that cannot be read.
    pub fn load(dir: &Path) -> Result<(Self, Vec<Pair>)> {
        if dir.join("speech").join("train").is_dir() {
            let speech = load_folder(&dir.join("speech").join("train")).map_err(audio_error)?;
            let noise = load_folder(&dir.join("noise").join("train")).map_err(audio_error)?;
            let valid = load_pairs(
                &dir.join("valid").join("clean"),
                &dir.join("valid").join("noisy"),
            )
            .map_err(audio_error)?;
            return Ok((Self::Mixing { speech, noise }, valid));
        }
        let (clean, noisy) = if dir.join("clean_trainset_wav").is_dir() {
            (
                dir.join("clean_trainset_wav"),
                dir.join("noisy_trainset_wav"),
            )
        } else if dir.join("clean").is_dir() {
            (dir.join("clean"), dir.join("noisy"))
        } else {
            return Err(AttnError::Config(format!(
                "{}: expected speech/train and noise/train (from `attnkit data prepare-speech`), \
                 clean_trainset_wav/ and noisy_trainset_wav/ (VoiceBank+DEMAND), or clean/ and noisy/",
                dir.display()
            )));
        };
        let pairs = load_pairs(&clean, &noisy).map_err(audio_error)?;
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        for (i, p) in pairs.into_iter().enumerate() {
            if i % 20 == 19 {
                valid.push(p)
            } else {
                train.push(p)
            }
        }
        if train.is_empty() || valid.is_empty() {
            return Err(AttnError::Config(format!(
                "{}: need at least 20 pairs (19 to train on, 1 to validate), got {}",
                noisy.display(),
                train.len() + valid.len()
            )));
        }
        Ok((Self::Pairs(train), valid))
    }

    /// One (noisy, clean) segment of `len` samples.
    fn segment(
        &self,
        config: &EnhanceConfig,
        len: usize,
        rng: &mut SplitMix64,
    ) -> (Vec<f32>, Vec<f32>) {
        match self {
            Self::Mixing { speech, noise } => {
                let m = MixtureSampler {
                    speech,
                    noise,
                    snr_db: config.snr_db,
                    babble: 0.15,
                    synthetic: 0.25,
                    level_db: (-35.0, -15.0),
                    augment: 0.3,
                }
                .sample(len, rng);
                (m.noisy, m.clean)
            }
            Self::Pairs(pairs) => {
                let p = &pairs[rng.below(pairs.len() as u64) as usize];
                let start = if p.clean.len() > len {
                    rng.below((p.clean.len() - len) as u64) as usize
                } else {
                    0
                };
                let take = |x: &[f32]| -> Vec<f32> {
                    (0..len)
                        .map(|i| x.get(start + i).copied().unwrap_or(0.0))
                        .collect()
                };
                (take(&p.noisy), take(&p.clean))
            }
        }
    }
}

/// The inverse STFT of the masked spectrum, as a graph autodiff can differentiate: each
/// frame's inverse transform is two matrix products with the synthesis basis
/// ([`Stft::synthesis_basis`]), and block j of the result is frame j + 1's first half
/// plus frame j's second half (the interior of the overlap-add, where two frames meet).
///
/// - `gains`, `re`, `im`: `[B, T, 161]`; `cos`, `sin`: `[161, 320]`
/// - returns: `[B, 160·(T − 1)]`, samples 160..160·T of the frames' signal
pub(crate) fn masked_waveform(
    gains: Tensor<3>,
    re: Tensor<3>,
    im: Tensor<3>,
    cos: Tensor<2>,
    sin: Tensor<2>,
) -> Tensor<2> {
    let [b, t, _] = gains.dims();
    let frames = (gains.clone() * re).reshape([b * t, BINS]).matmul(cos)
        + (gains * im).reshape([b * t, BINS]).matmul(sin);
    let frames = frames.reshape([b, t, 2 * HOP]);
    let first = frames.clone().slice([0..b, 1..t, 0..HOP]);
    let second = frames.slice([0..b, 0..t - 1, HOP..2 * HOP]);
    (first + second).reshape([b, HOP * (t - 1)])
}

/// The negative mean SI-SDR (dB) of `estimate` against `target`, both `[B, N]`.
pub(crate) fn negative_si_sdr(estimate: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let eps = 1e-8;
    let estimate = estimate.clone() - estimate.mean_dim(1);
    let target = target.clone() - target.mean_dim(1);
    let dot = (estimate.clone() * target.clone()).sum_dim(1);
    let energy = target.clone().powi_scalar(2).sum_dim(1) + eps;
    let projection = target * (dot / energy);
    let residual = estimate - projection.clone();
    let ratio =
        (projection.powi_scalar(2).sum_dim(1) + eps) / (residual.powi_scalar(2).sum_dim(1) + eps);
    let db = ratio.log() * (10.0 / std::f64::consts::LN_10);
    -db.mean().reshape([1])
}

/// The compression exponent of the spectral term, as in DeepFilterNet's spectral loss.
const COMPRESSION: f64 = 0.3;

/// The compressed-spectrum distance between the masked spectrum Ŝ = g·X and the clean
/// spectrum S: per bin (|Ŝ|ᶜ − |S|ᶜ)² + |(|Ŝ|ᶜe^{i∠Ŝ} − |S|ᶜe^{i∠S})|², c = 0.3,
/// averaged over every bin of every frame. The gains are real and positive, so
/// |Ŝ|ᶜ = gᶜ·A and ∠Ŝ = ∠X: both terms are polynomials in gᶜ whose coefficients the host
/// computes once ([`spectral_coefficients`]).
///
/// - `gains`, `a` (|X|ᶜ), `b` (|S|ᶜ), `cos_delta` (cos(∠X − ∠S)): `[B, T, 161]`
/// - returns: `[1]`
pub(crate) fn compressed_spectral_loss(
    gains: Tensor<3>,
    a: Tensor<3>,
    b: Tensor<3>,
    cos_delta: Tensor<3>,
) -> Tensor<1> {
    // The clamp keeps the derivative of gᶜ finite where the sigmoid rounds to 0.
    let estimate = gains.clamp_min(1e-6).powf_scalar(COMPRESSION) * a;
    let magnitude = (estimate.clone() - b.clone()).powi_scalar(2);
    let complex =
        estimate.clone().powi_scalar(2) + b.clone().powi_scalar(2) - estimate * b * cos_delta * 2.0;
    (magnitude + complex).mean().reshape([1])
}

/// |X|ᶜ, |S|ᶜ and cos(∠X − ∠S) of every bin (cos = 1 where either is silent) for
/// [`compressed_spectral_loss`], appended to `a`, `b`, `cos_delta`.
fn spectral_coefficients(
    noisy: (&[f32], &[f32]),
    clean: (&[f32], &[f32]),
    a: &mut Vec<f32>,
    b: &mut Vec<f32>,
    cos_delta: &mut Vec<f32>,
) {
    let half = COMPRESSION / 2.0;
    for i in 0..noisy.0.len() {
        let (xr, xi) = (noisy.0[i] as f64, noisy.1[i] as f64);
        let (sr, si) = (clean.0[i] as f64, clean.1[i] as f64);
        let (x2, s2) = (xr * xr + xi * xi, sr * sr + si * si);
        a.push(x2.powf(half) as f32);
        b.push(s2.powf(half) as f32);
        let norm = (x2 * s2).sqrt();
        cos_delta.push(if norm > 0.0 {
            ((xr * sr + xi * si) / norm) as f32
        } else {
            1.0
        });
    }
}

/// The enhancement task as the training loop runs it.
pub struct EnhanceTraining {
    config: EnhanceConfig,
    model: Enhancer,
    optimizer: Optimizer,
    rng: SplitMix64,
    step: u64,
    device: Device,
    data: EnhanceData,
    valid: Vec<Pair>,
    noisy_si_sdr: f64,
    basis_cos: Tensor<2>,
    basis_sin: Tensor<2>,
}

impl std::fmt::Debug for EnhanceTraining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnhanceTraining")
            .field("config", &self.config)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl EnhanceTraining {
    /// A fresh run on `data`, validated on (the first `config.validation_pairs` of)
    /// `valid`, on `device`'s autodiff.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] if the configuration is out of range, the data has no
    /// clips, or there are no validation pairs.
    pub fn new(
        config: EnhanceConfig,
        data: EnhanceData,
        valid: Vec<Pair>,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let empty = match &data {
            EnhanceData::Mixing { speech, .. } => speech.is_empty(),
            EnhanceData::Pairs(p) => p.is_empty(),
        };
        if empty || valid.is_empty() {
            return Err(AttnError::Config(
                "enhancement needs training clips and validation pairs".into(),
            ));
        }
        let mut valid = valid;
        valid.truncate(config.validation_pairs.max(1));
        let mut noisy = 0.0;
        for p in &valid {
            noisy += si_sdr(&p.noisy, &p.clean).map_err(audio_error)?;
        }
        let noisy_si_sdr = noisy / valid.len() as f64;
        let device = device.clone().autodiff();
        let model = match &config.init {
            None => crate::train::init_seeded(&device, config.seed, |d| Enhancer::new(&config, d))?,
            Some(path) => {
                let mut store = crate::store::TensorStore::load(Path::new(path))?;
                let (model, init) = Enhancer::from_store(&store, &device.clone().inner())?;
                let same = EnhanceConfig {
                    init: None,
                    ..config.clone()
                };
                let init_shape = EnhanceConfig { init: None, ..init };
                if (
                    init_shape.model,
                    init_shape.width,
                    init_shape.layers,
                    init_shape.heads,
                    init_shape.ff_dim,
                ) != (same.model, same.width, same.layers, same.heads, same.ff_dim)
                {
                    return Err(AttnError::Config(format!(
                        "{path}: a {} network of width {}, {} layers, {} heads, feed-forward {}; \
                         this run is a {} network of width {}, {} layers, {} heads, feed-forward {}",
                        init_shape.model.name(),
                        init_shape.width,
                        init_shape.layers,
                        init_shape.heads,
                        init_shape.ff_dim,
                        same.model.name(),
                        same.width,
                        same.layers,
                        same.heads,
                        same.ff_dim
                    )));
                }
                if config.forgetting && !init.forgetting {
                    // The earlier weights, with this run's initial forgetting rates.
                    let inner = device.clone().inner();
                    let fresh = Enhancer::new(&config, &inner)?;
                    let fresh_store = fresh.to_store(&config);
                    for name in fresh_store.names() {
                        if let (None, Some(t)) = (store.get(name), fresh_store.get(name)) {
                            store.insert(name, t.shape.clone(), t.data.clone())?;
                        }
                    }
                    use crate::store::TorchWeights;
                    fresh.load_weights(&store, "")?.train()
                } else if init.forgetting != config.forgetting {
                    return Err(AttnError::Config(format!(
                        "{path}: a network with learned forgetting rates; this run has none                          (add --forgetting)"
                    )));
                } else {
                    model.train()
                }
            }
        };
        let optimizer = config.optimizer.init()?;
        let (cos, sin) = Stft::speech().synthesis_basis();
        let inner = device.clone().inner();
        Ok(Self {
            rng: SplitMix64::new(config.seed),
            basis_cos: Tensor::from_data(TensorData::new(cos, [BINS, 2 * HOP]), &inner),
            basis_sin: Tensor::from_data(TensorData::new(sin, [BINS, 2 * HOP]), &inner),
            config,
            model,
            optimizer,
            step: 0,
            device,
            data,
            valid,
            noisy_si_sdr,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &EnhanceConfig {
        &self.config
    }

    /// The network without autodiff tracking.
    pub fn inference_model(&self) -> Enhancer {
        self.model.valid()
    }

    /// Mean SI-SDR (dB) of the validation pairs' noisy signals.
    pub fn noisy_si_sdr(&self) -> f64 {
        self.noisy_si_sdr
    }

    /// Mean SI-SDR (dB) of the enhanced validation signals.
    ///
    /// # Errors
    ///
    /// Whatever the network refuses.
    pub fn validation_si_sdr(&self) -> Result<f64> {
        let model = self.inference_model();
        let device = self.device.clone().inner();
        let mut total = 0.0;
        for chunk in self.valid.chunks(20) {
            let noisy: Vec<&[f32]> = chunk.iter().map(|p| p.noisy.as_slice()).collect();
            let out = enhance_batch(&model, &noisy, &device)?;
            for (o, p) in out.iter().zip(chunk) {
                total += si_sdr(o, &p.clean).map_err(audio_error)?;
            }
        }
        Ok(total / self.valid.len() as f64)
    }
}

impl TrainingTask for EnhanceTraining {
    fn name(&self) -> &'static str {
        "enhance"
    }

    fn config_json(&self) -> Value {
        json!(self.config)
    }

    fn steps_per_epoch(&self) -> Option<u64> {
        None
    }

    /// One step on a fresh batch of segments: `loss` (negative SI-SDR in dB, plus the
    /// weighted spectral term when there is one), `si_sdr` and `spectral`.
    fn train_step(&mut self) -> Result<Metrics> {
        let (b, t) = (self.config.batch_size, self.config.segment_frames);
        let len = HOP * (t + 1);
        let stft = Stft::speech();
        let mut feats = Vec::with_capacity(b * t * BINS);
        let mut re = Vec::with_capacity(b * t * BINS);
        let mut im = Vec::with_capacity(b * t * BINS);
        let mut target = Vec::with_capacity(b * HOP * (t - 1));
        let spectral = self.config.spectral_weight > 0.0;
        let (mut coef_a, mut coef_b, mut coef_cos) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..b {
            let (noisy, clean) = self.data.segment(&self.config, len, &mut self.rng);
            let spec = stft.analyze(&noisy);
            debug_assert_eq!(spec.frames, t);
            if spectral {
                let clean_spec = stft.analyze(&clean);
                spectral_coefficients(
                    (&spec.re, &spec.im),
                    (&clean_spec.re, &clean_spec.im),
                    &mut coef_a,
                    &mut coef_b,
                    &mut coef_cos,
                );
            }
            feats.extend(features(&spec.re, &spec.im));
            re.extend_from_slice(&spec.re);
            im.extend_from_slice(&spec.im);
            target.extend_from_slice(&clean[HOP..HOP * t]);
        }
        let d = &self.device;
        let tensor = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [b, t, BINS]), d);
        let gains = self.model.forward(tensor(feats))?;
        let spectral_loss = spectral.then(|| {
            compressed_spectral_loss(
                gains.clone(),
                tensor(coef_a),
                tensor(coef_b),
                tensor(coef_cos),
            )
        });
        let (re, im) = (tensor(re), tensor(im));
        let estimate = masked_waveform(
            gains,
            re,
            im,
            self.basis_cos.clone().autodiff(),
            self.basis_sin.clone().autodiff(),
        );
        let target = Tensor::<2>::from_data(TensorData::new(target, [b, HOP * (t - 1)]), d);
        let negative_si_sdr = negative_si_sdr(estimate, target);
        let si_sdr_value = -(negative_si_sdr.clone().into_scalar::<f32>() as f64);
        let (loss, spectral_value) = match spectral_loss {
            Some(s) => {
                let value = s.clone().into_scalar::<f32>() as f64;
                (
                    negative_si_sdr + s * self.config.spectral_weight,
                    Some(value),
                )
            }
            None => (negative_si_sdr, None),
        };
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        if !loss_value.is_finite() {
            return Err(AttnError::Config(format!(
                "the loss is {loss_value} at step {}: lower the learning rate",
                self.step + 1
            )));
        }
        let model = self.model.clone();
        self.model = self.optimizer.step(model, loss);
        self.step += 1;
        let mut metrics = vec![("loss", loss_value), ("si_sdr", si_sdr_value)];
        if let Some(s) = spectral_value {
            metrics.push(("spectral", s));
        }
        Ok(metrics)
    }

    /// `val_si_sdr` (dB) of the enhanced validation pairs and `val_gain`, its
    /// improvement over the noisy signals.
    fn validate(&self) -> Result<Metrics> {
        let s = self.validation_si_sdr()?;
        Ok(vec![("val_si_sdr", s), ("val_gain", s - self.noisy_si_sdr)])
    }

    fn checkpoint(&self, mut header: CheckpointHeader) -> Result<Checkpoint> {
        (header.rng_state, header.rng_spare) = self.rng.snapshot();
        Checkpoint::new(header, &self.model, self.optimizer.state_bytes()?)
    }

    fn restore(&mut self, ckpt: &Checkpoint, path: &Path) -> Result<()> {
        let plain = Enhancer::new(&self.config, &self.device.clone().inner())?;
        self.model = ckpt.load_model(plain, path)?.train();
        let optimizer = self.config.optimizer.init()?;
        self.optimizer = optimizer.load_state_bytes(ckpt.optimizer.clone())?;
        self.rng = SplitMix64::restore(ckpt.header.rng_state, ckpt.header.rng_spare);
        self.step = ckpt.header.step;
        Ok(())
    }
}

impl EnhanceTraining {
    /// Steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// A header for saving outside the loop.
    pub fn header(&self) -> CheckpointHeader {
        header_for(self, self.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        (0..n).map(|_| rng.normal() as f32 * 0.1).collect()
    }

    /// The graph's inverse STFT equals the host's (realfft) on a masked spectrum, and
    /// its SI-SDR equals the host's f64 SI-SDR.
    #[test]
    fn graph_waveform_and_loss_match_the_host() {
        let device = Device::flex();
        let stft = Stft::speech();
        let t = 12;
        let x = noise(HOP * (t + 1), 1);
        let spec = stft.analyze(&x);
        assert_eq!(spec.frames, t);
        let mut rng = SplitMix64::new(2);
        let gains: Vec<f32> = (0..t * BINS).map(|_| rng.next_f64() as f32).collect();
        let tensor =
            |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [1, t, BINS]), &device);
        let (cos, sin) = stft.synthesis_basis();
        let graph = masked_waveform(
            tensor(gains.clone()),
            tensor(spec.re.clone()),
            tensor(spec.im.clone()),
            Tensor::from_data(TensorData::new(cos, [BINS, 2 * HOP]), &device),
            Tensor::from_data(TensorData::new(sin, [BINS, 2 * HOP]), &device),
        );
        let graph: Vec<f32> = graph.try_into_vec_as::<f32>().unwrap();
        let mut masked = spec.clone();
        masked.re.iter_mut().zip(&gains).for_each(|(v, g)| *v *= g);
        masked.im.iter_mut().zip(&gains).for_each(|(v, g)| *v *= g);
        let host = stft.synthesize(&masked).unwrap();
        let host = &host[HOP..HOP * t];
        assert_eq!(graph.len(), host.len());
        // f32 matrix products vs f32 FFTs of samples ~0.1: 1e-6 absolute.
        let worst = graph
            .iter()
            .zip(host)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-6, "worst {worst}");
        let target = &x[HOP..HOP * t];
        let loss = negative_si_sdr(
            Tensor::<2>::from_data(TensorData::new(graph.clone(), [1, graph.len()]), &device),
            Tensor::<2>::from_data(TensorData::new(target.to_vec(), [1, target.len()]), &device),
        );
        let loss: f32 = loss.into_scalar::<f32>();
        let oracle = si_sdr(&graph, target).unwrap();
        // f32 sums of 1,760 products vs f64: 1e-3 dB.
        assert!((loss as f64 + oracle).abs() < 1e-3, "{loss} vs -{oracle}");
    }

    /// The spectral term from its coefficients equals the distance computed directly on
    /// complex numbers in f64: compress g·X and S (|z|ᶜ·z/|z|), then the squared
    /// magnitude and complex differences, averaged over the bins. Its gradient is
    /// checked against central differences of that oracle.
    #[test]
    fn spectral_term_matches_complex_arithmetic_and_its_derivative() {
        let device = Device::flex().autodiff();
        let stft = Stft::speech();
        let t = 6;
        let (x, s) = (noise(HOP * (t + 1), 3), noise(HOP * (t + 1), 4));
        let (mut xs, ss) = (stft.analyze(&x), stft.analyze(&s));
        // Silent bins in both signals take the `cos = 1` branch.
        for i in 0..5 {
            xs.re[i] = 0.0;
            xs.im[i] = 0.0;
        }
        let mut rng = SplitMix64::new(5);
        let gains: Vec<f64> = (0..t * BINS).map(|_| 0.05 + 0.9 * rng.next_f64()).collect();
        let compress = |re: f64, im: f64| -> (f64, f64, f64) {
            let m = (re * re + im * im).sqrt();
            if m == 0.0 {
                return (0.0, 0.0, 0.0);
            }
            let c = m.powf(COMPRESSION);
            (c, c * re / m, c * im / m)
        };
        let oracle = |g: &[f64]| -> f64 {
            let mut total = 0.0;
            for (i, &g) in g.iter().enumerate() {
                let (em, er, ei) = compress(g * xs.re[i] as f64, g * xs.im[i] as f64);
                let (sm, sr, si) = compress(ss.re[i] as f64, ss.im[i] as f64);
                total += (em - sm).powi(2) + (er - sr).powi(2) + (ei - si).powi(2);
            }
            total / g.len() as f64
        };
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        spectral_coefficients((&xs.re, &xs.im), (&ss.re, &ss.im), &mut a, &mut b, &mut c);
        let tensor =
            |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [1, t, BINS]), &device);
        let g = tensor(gains.iter().map(|&g| g as f32).collect()).require_grad();
        let loss = compressed_spectral_loss(g.clone(), tensor(a), tensor(b), tensor(c));
        let value = loss.clone().into_scalar::<f32>() as f64;
        let want = oracle(&gains);
        // f32 arithmetic on values ~1 averaged over 966 bins: 1e-5 relative.
        assert!(
            (value - want).abs() < 1e-5 * want.abs().max(1.0),
            "{value} vs {want}"
        );
        let grads = loss.backward();
        let grad: Vec<f32> = g.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
        for i in [0, 7, 100, 500, t * BINS - 1] {
            let h = 1e-6;
            let (mut up, mut down) = (gains.clone(), gains.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (oracle(&up) - oracle(&down)) / (2.0 * h);
            // f32 gradient of a mean over 966 bins vs f64 central differences.
            assert!(
                (grad[i] as f64 - fd).abs() < 1e-4 * fd.abs() + 1e-8,
                "bin {i}: {} vs {fd}",
                grad[i]
            );
        }
    }
}
