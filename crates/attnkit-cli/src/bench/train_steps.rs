//! The training workloads: one optimizer step of a sentiment classifier and of the
//! Aaren layer, and the Aaren scan's forward and backward alone.

use anyhow::Result;
use attnkit::aaren::{AarenConfig, prefix_attention_fused};
use attnkit::layers::{TorchLinear, TorchLinearConfig};
use attnkit::recurrent::{Recurrent, RecurrentConfig, RecurrentKind};
use attnkit::train::{OptimizerConfig, cross_entropy, materialize, mse};
use attnkit_kernels::rng::SplitMix64;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;

use super::{sync, time_runs};

/// Sizes of the classifier workloads.
pub(super) struct ClassifierShape {
    pub(super) kind: RecurrentKind,
    pub(super) batch: usize,
    pub(super) len: usize,
    pub(super) embed: usize,
    pub(super) hidden: usize,
    pub(super) vocab: usize,
}

/// Token ids → embedding → bidirectional recurrence → both final states → 2 logits.
#[derive(Module, Debug)]
struct Classifier {
    embedding: Embedding,
    recurrent: Recurrent,
    head: TorchLinear,
}

impl Classifier {
    /// `ids` `[B, L]` → logits `[B, 2]`.
    fn forward(&self, ids: Tensor<2, Int>) -> Result<Tensor<2>> {
        let b = ids.dims()[0];
        let h_n = self
            .recurrent
            .forward(self.embedding.forward(ids), None)?
            .h_n;
        let [dirs, _, h] = h_n.dims();
        Ok(self
            .head
            .forward(h_n.swap_dims(0, 1).reshape([b, dirs * h]))?)
    }
}

/// One Adam step (lr 2e-3) of the classifier per run, on one fixed batch.
pub(super) fn recurrent_classifier(
    shape: &ClassifierShape,
    runs: usize,
    device: &Device,
) -> Result<Vec<f64>> {
    let ad = device.clone().autodiff();
    let mut net = Classifier {
        embedding: EmbeddingConfig::new(shape.vocab, shape.embed).init(&ad),
        recurrent: RecurrentConfig::new(shape.kind, shape.embed, shape.hidden)
            .with_bidirectional(true)
            .init(&ad)?,
        head: TorchLinearConfig::new(2 * shape.hidden, 2).init(&ad),
    };
    materialize(&net);
    let mut rng = SplitMix64::new(0);
    let (b, l) = (shape.batch, shape.len);
    let ids: Vec<i64> = (0..b * l)
        .map(|_| rng.below(shape.vocab as u64) as i64)
        .collect();
    let labels: Vec<i64> = (0..b).map(|_| rng.below(2) as i64).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, l]), &ad);
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &ad);
    let mut optim = OptimizerConfig::Adam { lr: 2e-3 }.init()?;
    time_runs(runs, || {
        let loss = cross_entropy(net.forward(ids.clone())?, labels.clone())?;
        net = optim.step(net.clone(), loss);
        sync(net.head.weight.val());
        Ok(())
    })
}

/// One Adam step (lr 1e-4) of the Aaren layer per run: MSE of every prefix output
/// against a fixed target.
pub(super) fn aaren_layer(
    b: usize,
    h: usize,
    l: usize,
    e: usize,
    runs: usize,
    device: &Device,
) -> Result<Vec<f64>> {
    let ad = device.clone().autodiff();
    let mut layer = AarenConfig::new(e, h).init(&ad)?;
    materialize(&layer);
    let mut optim = OptimizerConfig::Adam { lr: 1e-4 }.init()?;
    let x = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &ad);
    let y = Tensor::<3>::random([b, l, e], burn::tensor::Distribution::Default, &ad);
    time_runs(runs, || {
        let loss = mse(layer.forward(x.clone(), None)?, y.clone())?;
        layer = optim.step(layer.clone(), loss);
        sync(layer.cell.query.val());
        Ok(())
    })
}

/// The scan's forward and backward per run: N(0, 1) scores `[B, H, L]` and values
/// `[B, H, L, E/H]` to the gradient of Σ output ⊙ R with respect to both.
pub(super) fn aaren_scan(
    b: usize,
    h: usize,
    l: usize,
    e: usize,
    runs: usize,
    device: &Device,
) -> Result<Vec<f64>> {
    let ad = device.clone().autodiff();
    let d = e / h;
    let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
    let s = Tensor::<3>::random([b, h, l], normal, &ad).require_grad();
    let v = Tensor::<4>::random([b, h, l, d], normal, &ad).require_grad();
    let r = Tensor::<4>::random([b, h, l, d], normal, &ad);
    time_runs(runs, || {
        let out = prefix_attention_fused(s.clone(), v.clone(), None)?;
        let grads = (out * r.clone()).sum().backward();
        let gs = s.grad(&grads);
        let gv = v.grad(&grads);
        if let (Some(gs), Some(gv)) = (gs, gv) {
            sync(gs);
            sync(gv);
        }
        Ok(())
    })
}
