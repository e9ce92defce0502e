//! Whole trained networks from their checkpoints: the counting task's network (either
//! mixer) as one graph from digits to class logits.

use std::path::Path;

use attnkit::aaren::AarenMode;
use attnkit::contract::MhaContract;
use attnkit::store::{StoredTensor, TensorStore, TorchWeights};
use attnkit::tasks::counting::{CountConfig, CountingNet};
use attnkit::tasks::sentiment::{SentimentModel, SentimentNet};
use attnkit::train::Checkpoint;
use burn::prelude::*;

use super::aaren::{aaren_block, levels_for};
use super::attention::mha_block;
use super::layers::{BlockShape, Mixer, encoder_block};
use super::recurrent::masked_final_state;
use super::{Context, ExportOptions, Exported};
use crate::builder::{Attr, Dim, GraphBuilder, ModelBuilder};
use crate::error::{OnnxError, Result};
use crate::proto::tensor_proto::DataType;

/// The tasks whose checkpoints export.
pub const EXPORTABLE_TASKS: &[&str] = &["count", "imdb"];

/// Exports the network saved in the checkpoint at `path`.
///
/// - `count`: input `tokens` `[B, seq_len + 2]` int64 digits, output `logits`
///   `[B, 2·seq_len + 1]`.
/// - `imdb`: inputs `ids` `[B, L]` int64 token ids (0 = padding; line i of the run's
///   `imdb-vocab.txt` is the word of id i) and `lengths` `[B]` int64 (1 ≤ length ≤ L),
///   output `logits` `[B, 2]` (negative, positive).
///
/// # Errors
///
/// [`OnnxError::Attn`] if the checkpoint cannot be read or does not fit its network (naming
/// the file); [`OnnxError::Unsupported`] for a task with no exporter.
pub fn export_checkpoint(path: &Path) -> Result<Exported> {
    let ckpt = Checkpoint::load(path)?;
    let task = ckpt.header.task.clone();
    match task.as_str() {
        "count" => export_count(&ckpt, path),
        "imdb" => export_sentiment(&ckpt, path),
        other => Err(OnnxError::Unsupported {
            module: format!("{} (task `{other}`)", path.display()),
            why: format!(
                "checkpoints of these tasks export: {}",
                EXPORTABLE_TASKS.join(", ")
            ),
        }),
    }
}

/// An export context over a checkpoint's weights.
fn checkpoint_context<'a>(task: &str, weights: &'a TensorStore) -> Context<'a> {
    Context {
        module: task.into(),
        weights: Some(weights),
        used: Default::default(),
        warnings: Vec::new(),
        options: ExportOptions::default(),
    }
}

/// The learned pooling query `[1, E]` (weight `query`) repeated over the batch of
/// `batch_of`: `[B, 1, E]`.
fn learned_query(
    ctx: &mut Context<'_>,
    g: &mut GraphBuilder,
    e: usize,
    batch_of: &str,
) -> Result<String> {
    let query = ctx.weight("query", &[Some(1), Some(e)], &["1", "E"])?;
    let query = g.f32_tensor("query", &[1, 1, e], &query.data);
    let batch = g.dim_of(batch_of, 0);
    let rest = g.i64_tensor("one_and_width", &[1, e as i64]);
    let shape_b1e = g.concat(&[&batch, &rest], 0);
    Ok(g.node("Expand", &[&query, &shape_b1e], vec![]))
}

/// The finished model: unused weights reported, the checkpoint's task, config and step
/// in the metadata.
fn finish(
    mut ctx: Context<'_>,
    g: GraphBuilder,
    ckpt: &Checkpoint,
    task: &str,
    doc: String,
) -> Exported {
    ctx.report_unused();
    let model = ModelBuilder::new(g.build())
        .doc(doc)
        .metadata("attnkit.task", task)
        .metadata("attnkit.config", ckpt.header.config.to_string())
        .metadata("attnkit.step", ckpt.header.step.to_string())
        .build();
    Exported {
        model,
        warnings: ctx.warnings,
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
        attnkit::AttnError::File(attnkit::FormatError::Format {
            path: path.to_path_buf(),
            why: format!("count config in the header: {e}"),
        })
    })?;
    let device = Device::flex();
    let net = ckpt.load_model(CountingNet::new(&config, &device)?, path)?;
    let weights = count_weights(&net);
    let mut ctx = checkpoint_context("count", &weights);
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
    let q = learned_query(&mut ctx, &mut g, e, &tokens)?;
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
    let doc = format!(
        "attnkit counting network ({:?} mixer), step {} of {}",
        config.mixer,
        ckpt.header.step,
        path.display()
    );
    Ok(finish(ctx, g, ckpt, "count", doc))
}

/// The sentiment network's parameters under PyTorch-style names.
fn sentiment_weights(net: &SentimentNet) -> TensorStore {
    let mut s = TensorStore::new("checkpoint");
    param(&mut s, "embedding.weight", net.embedding.weight.val());
    if let Some(rnn) = &net.recurrent {
        rnn.save_weights(&mut s, "rnn.");
    }
    if let Some(att) = &net.attention {
        att.save_weights(&mut s, "attention.");
    }
    if let Some(q) = &net.query {
        param(&mut s, "query", q.val());
    }
    if let Some(aaren) = &net.aaren {
        aaren.save_weights(&mut s, "aaren.");
    }
    net.classifier.save_weights(&mut s, "classifier.");
    s
}

fn export_sentiment(ckpt: &Checkpoint, path: &Path) -> Result<Exported> {
    let device = Device::flex();
    let (config, net) = SentimentNet::from_checkpoint(ckpt, path, &device)?;
    let weights = sentiment_weights(&net);
    let mut ctx = checkpoint_context("imdb", &weights);
    let table = ctx.weight("embedding.weight", &[None, None], &["vocab", "E"])?;
    let e = table.shape[1];
    let mut g = GraphBuilder::new("imdb");
    let batch = Dim::named("B");
    let ids = g.typed_input(
        "ids",
        DataType::Int64,
        Some(&[batch.clone(), Dim::named("L")]),
    );
    let lengths = g.typed_input(
        "lengths",
        DataType::Int64,
        Some(std::slice::from_ref(&batch)),
    );
    let table = g.f32_tensor("embedding.weight", &table.shape, &table.data);
    let x = g.node_as(
        "embedded",
        "Gather",
        &[&table, &ids],
        vec![("axis", Attr::Int(0))],
    );
    // valid[b, t] = t < lengths[b]
    let shape = g.node("Shape", &[&ids], vec![]);
    let axis = g.i64_scalar("seq_axis", 1);
    let len = g.node("Gather", &[&shape, &axis], vec![("axis", Attr::Int(0))]);
    let zero = g.i64_scalar("zero", 0);
    let one = g.i64_scalar("one_i64", 1);
    let positions = g.node_as("positions", "Range", &[&zero, &len, &one], vec![]);
    let positions = g.unsqueeze(&positions, &[0]);
    let lengths_col = g.unsqueeze(&lengths, &[1]);
    let valid = g.node_as("valid", "Less", &[&positions, &lengths_col], vec![]);
    let padding = g.node_as("padding", "Not", &[&valid], vec![]);
    let (kind, bidirectional) = match config.model {
        SentimentModel::Rnn => (Some("rnn"), false),
        SentimentModel::Lstm => (Some("lstm"), false),
        SentimentModel::Gru => (Some("gru"), false),
        SentimentModel::Birnn => (Some("rnn"), true),
        SentimentModel::Bilstm => (Some("lstm"), true),
        SentimentModel::Bigru => (Some("gru"), true),
        SentimentModel::Attention | SentimentModel::Aaren => (None, false),
    };
    let heads = if e % 2 == 0 { 2 } else { 1 };
    let features = if let Some(kind) = kind {
        let valid3 = g.unsqueeze(&valid, &[2]);
        masked_final_state(
            &mut ctx,
            &mut g,
            "rnn.",
            kind,
            e,
            config.hidden,
            bidirectional,
            &x,
            &valid3,
        )?
    } else if config.model == SentimentModel::Attention {
        let q = learned_query(&mut ctx, &mut g, e, &ids)?;
        let cfg = MhaContract {
            embed_dim: e,
            num_heads: heads,
        };
        let (pooled, _) = mha_block(
            &mut ctx,
            &mut g,
            "attention.",
            &cfg,
            &q,
            &x,
            &x,
            Some(&padding),
        )?;
        g.reshape(&pooled, &[0, e as i64])
    } else {
        let levels = levels_for(ctx.options.max_len);
        let out = aaren_block(
            &mut ctx,
            &mut g,
            "aaren.",
            e,
            heads,
            AarenMode::Parallel,
            levels,
            &x,
            Some(&padding),
        )?;
        // The output at each sequence's last token: Where, not a product, so a NaN
        // at a padded position (beyond the scan's max_len) cannot leak in.
        let last = g.binary("Sub", &lengths_col, &one);
        let at_last = g.node_as("at_last", "Equal", &[&positions, &last], vec![]);
        let at_last = g.unsqueeze(&at_last, &[2]);
        let zero_f = g.f32_scalar("zero_f", 0.0);
        let picked = g.where_(&at_last, &out, &zero_f);
        let axes = g.i64_tensor("axes", &[1]);
        g.node(
            "ReduceSum",
            &[&picked, &axes],
            vec![("keepdims", Attr::Int(0))],
        )
    };
    let width = match kind {
        Some(_) if bidirectional => 2 * config.hidden,
        Some(_) => config.hidden,
        None => e,
    };
    let w = ctx.weight(
        "classifier.weight",
        &[Some(2), Some(width)],
        &["2", "features"],
    )?;
    let b = ctx.weight("classifier.bias", &[Some(2)], &["2"])?;
    let logits = g.linear(
        &features,
        "classifier.weight",
        w,
        Some(("classifier.bias", b)),
    );
    g.output(&logits, "logits", &[batch, Dim::fixed(2)]);
    let doc = format!(
        "attnkit IMDB sentiment network ({:?}, {:?} embedding), step {} of {}",
        config.model,
        config.embedding,
        ckpt.header.step,
        path.display()
    );
    Ok(finish(ctx, g, ckpt, "imdb", doc))
}
