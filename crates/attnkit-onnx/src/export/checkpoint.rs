//! Whole trained networks from their checkpoints: the counting task's network (either
//! mixer) as one graph from digits to class logits.

use std::path::Path;

use attnkit::aaren::AarenMode;
use attnkit::contract::MhaContract;
use attnkit::store::{StoredTensor, TensorStore, TorchWeights};
use attnkit::tasks::counting::{CountConfig, CountingNet};
use attnkit::train::Checkpoint;
use burn::prelude::*;

use super::attention::mha_block;
use super::layers::{BlockShape, Mixer, encoder_block};
use super::{Context, ExportOptions, Exported};
use crate::builder::{Attr, Dim, GraphBuilder, ModelBuilder};
use crate::error::{OnnxError, Result};
use crate::proto::tensor_proto::DataType;

/// The tasks whose checkpoints export.
pub const EXPORTABLE_TASKS: &[&str] = &["count"];

/// Exports the network saved in the checkpoint at `path`.
///
/// - `count`: input `tokens` `[B, seq_len + 2]` int64 digits, output `logits`
///   `[B, 2·seq_len + 1]`.
pub fn export_checkpoint(path: &Path) -> Result<Exported> {
    let ckpt = Checkpoint::load(path)?;
    let task = ckpt.header.task.clone();
    match task.as_str() {
        "count" => export_count(&ckpt, path),
        other => Err(OnnxError::Unsupported {
            module: format!("{} (task `{other}`)", path.display()),
            why: format!(
                "checkpoints of these tasks export: {}",
                EXPORTABLE_TASKS.join(", ")
            ),
        }),
    }
}

fn param<const D: usize>(store: &mut TensorStore, name: &str, t: Tensor<D>) {
    let t = StoredTensor::from_tensor(t);
    store
        .insert(name, t.shape, t.data)
        .expect("a tensor's shape matches its values");
}

/// The counting network's parameters under PyTorch-style names.
fn count_weights(net: &CountingNet) -> TensorStore {
    let mut s = TensorStore::new("checkpoint");
    param(&mut s, "embedding.weight", net.embedding.weight.val());
    param(
        &mut s,
        "positional",
        net.positional.positional_encoding.val(),
    );
    if let Some(enc) = &net.attention_encoder {
        enc.save_weights(&mut s, "encoder.");
    }
    if let Some(enc) = &net.aaren_encoder {
        enc.save_weights(&mut s, "encoder.");
    }
    param(&mut s, "query", net.query.val());
    net.decoder.save_weights(&mut s, "decoder.");
    net.classifier.save_weights(&mut s, "classifier.");
    s
}

fn export_count(ckpt: &Checkpoint, path: &Path) -> Result<Exported> {
    let config: CountConfig = serde_json::from_value(ckpt.header.config.clone()).map_err(|e| {
        attnkit::AttnError::Format {
            path: path.to_path_buf(),
            why: format!("count config in the header: {e}"),
        }
    })?;
    let device = Device::flex();
    let net = ckpt.load_model(CountingNet::new(&config, &device)?, path)?;
    let weights = count_weights(&net);
    let mut ctx = Context {
        module: "count".into(),
        weights: Some(&weights),
        used: Default::default(),
        warnings: Vec::new(),
        options: ExportOptions::default(),
    };
    let (e, t) = (config.embed_dim, config.seq_len + 2);
    let mut g = GraphBuilder::new("count");
    let tokens = g.typed_input(
        "tokens",
        DataType::Int64,
        Some(&[Dim::named("B"), Dim::fixed(t)]),
    );
    let table = ctx.weight(
        "embedding.weight",
        &[Some(config.vocab), Some(e)],
        &["vocab", "E"],
    )?;
    let table = g.f32_tensor("embedding.weight", &table.shape, &table.data);
    let x = g.node_as(
        "embedded",
        "Gather",
        &[&table, &tokens],
        vec![("axis", Attr::Int(0))],
    );
    let pe = ctx.weight("positional", &[Some(1), Some(t), Some(e)], &["1", "T", "E"])?;
    let pe = g.f32_tensor("positional", &pe.shape, &pe.data);
    let x = g.binary("Add", &x, &pe);
    let mixer = match config.mixer {
        attnkit::tasks::counting::Mixer::Attention => Mixer::Attention,
        attnkit::tasks::counting::Mixer::Aaren => Mixer::Aaren(AarenMode::Parallel),
    };
    let shape = BlockShape {
        embed_dim: e,
        num_heads: config.num_heads,
        max_len: t,
        epsilon: 1e-5,
    };
    let x = encoder_block(&mut ctx, &mut g, "encoder.", mixer, &shape, &x)?;
    // The decoder: the learned query attends over the encoded sequence.
    let query = ctx.weight("query", &[Some(1), Some(e)], &["1", "E"])?;
    let query = g.f32_tensor("query", &[1, 1, e], &query.data);
    let batch = g.dim_of(&tokens, 0);
    let rest = g.i64_tensor("one_and_width", &[1, e as i64]);
    let shape_b1e = g.concat(&[&batch, &rest], 0);
    let q = g.node("Expand", &[&query, &shape_b1e], vec![]);
    let cfg = MhaContract {
        embed_dim: e,
        num_heads: config.num_heads,
    };
    let (pooled, _) = mha_block(&mut ctx, &mut g, "decoder.", &cfg, &q, &x, &x, None)?;
    let pooled = g.reshape(&pooled, &[0, e as i64]);
    let classes = config.classes();
    let w = ctx.weight(
        "classifier.weight",
        &[Some(classes), Some(e)],
        &["classes", "E"],
    )?;
    let b = ctx.weight("classifier.bias", &[Some(classes)], &["classes"])?;
    let logits = g.linear(
        &pooled,
        "classifier.weight",
        w,
        Some(("classifier.bias", b)),
    );
    g.output(&logits, "logits", &[Dim::named("B"), Dim::fixed(classes)]);
    ctx.report_unused();
    let model = ModelBuilder::new(g.build())
        .doc(format!(
            "attnkit counting network ({:?} mixer), step {} of {}",
            config.mixer,
            ckpt.header.step,
            path.display()
        ))
        .metadata("attnkit.task", "count")
        .metadata("attnkit.config", ckpt.header.config.to_string())
        .metadata("attnkit.step", ckpt.header.step.to_string())
        .build();
    Ok(Exported {
        model,
        warnings: ctx.warnings,
    })
}
