//! The speech enhancer as a one-frame ONNX cell: features in, gains out, every layer's
//! state in and out — what a device runs every 10 ms, with the STFT around it.
//!
//! Inputs: `features` `[B, 161]` (per-bin (log₁₀(|X|² + 10⁻¹⁰) + 5) / 3 of the frame,
//! as attnkit computes them), then per layer i: Aaren `state_a_{i}` `[B, H, d]`,
//! `state_c_{i}` `[B, H]`, `state_m_{i}` `[B, H]` (the empty state is 0, 0, −∞); GRU
//! `state_h_{i}` `[B, E]` (0 at the start). Outputs: `gains` `[B, 161]` in (0, 1), then
//! `next_` + each state's name.

use attnkit::store::TensorStore;
use attnkit::tasks::enhance::{BINS, CONFIG_KEY, EnhanceConfig, TemporalModel};

use super::aaren::{AarenParams, cell_step};
use super::layers::{feed_forward, layer_norm};
use super::{Context, ExportOptions, Exported, rows};
use crate::builder::{Dim, GraphBuilder, ModelBuilder};
use crate::error::{OnnxError, Result};

/// The state inputs of the cell for `config`, in order (outputs are `next_` + name).
pub fn enhancer_state_names(config: &EnhanceConfig) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..config.layers {
        match config.model {
            TemporalModel::Aaren => names.extend([
                format!("state_a_{i}"),
                format!("state_c_{i}"),
                format!("state_m_{i}"),
            ]),
            _ => names.push(format!("state_h_{i}")),
        }
    }
    names
}

/// Exports the enhancer whose weights and configuration `store` holds (as
/// `attnkit train enhance` writes them) as the one-frame cell.
///
/// # Errors
///
/// [`OnnxError::Unsupported`] for the causal-attention model (no fixed-size state) or a
/// store without an enhancer configuration; [`OnnxError::Attn`] for a missing or
/// misshapen weight.
pub fn export_enhancer_step(store: &TensorStore) -> Result<Exported> {
    let unsupported = |why: String| OnnxError::Unsupported {
        module: format!("{} (enhancer)", store.source()),
        why,
    };
    let json = store.metadata().get(CONFIG_KEY).ok_or_else(|| {
        unsupported(format!(
            "no `{CONFIG_KEY}` metadata: not written by `attnkit train enhance`"
        ))
    })?;
    let config: EnhanceConfig =
        serde_json::from_str(json).map_err(|e| unsupported(format!("bad `{CONFIG_KEY}`: {e}")))?;
    if config.model == TemporalModel::Attention {
        return Err(unsupported(
            "causal attention has no fixed-size state to carry from frame to frame".into(),
        ));
    }
    let mut ctx = Context {
        module: "enhance".into(),
        weights: Some(store),
        used: Default::default(),
        warnings: Vec::new(),
        options: ExportOptions::default(),
    };
    let e = config.width;
    let batch = Dim::named("B");
    let mut g = GraphBuilder::new("enhance_step");
    let features = g.input("features", &[batch.clone(), Dim::fixed(BINS)]);
    let w_in = ctx.weight("input.weight", &[Some(e), Some(BINS)], &["E", "bins"])?;
    let b_in = ctx.weight("input.bias", &[Some(e)], &["E"])?;
    let x = g.linear(&features, "input.weight", w_in, Some(("input.bias", b_in)));
    let mut x = g.node("Relu", &[&x], vec![]);
    let mut outputs: Vec<(String, String, Vec<Dim>)> = Vec::new();
    for i in 0..config.layers {
        match config.model {
            TemporalModel::Aaren => {
                let p = format!("aaren.layers.{i}.");
                let (h, d) = (config.heads, e / config.heads);
                let params = if config.forgetting {
                    AarenParams::read_weights(&mut ctx, &format!("{p}aaren."), e, h)?
                } else {
                    AarenParams::read(&mut ctx, &format!("{p}aaren."), e, h)?
                };
                let dims_a = vec![batch.clone(), Dim::fixed(h), Dim::fixed(d)];
                let dims = vec![batch.clone(), Dim::fixed(h)];
                let a = g.input(&format!("state_a_{i}"), &dims_a);
                let c = g.input(&format!("state_c_{i}"), &dims);
                let mut m = g.input(&format!("state_m_{i}"), &dims);
                if config.forgetting {
                    // Every earlier frame is one step older: m − λ before the update.
                    let log_decay =
                        ctx.weight(&format!("{p}aaren.log_decay"), &[Some(h)], &["H"])?;
                    let rates: Vec<f32> = log_decay.data.iter().map(|v| v.exp()).collect();
                    let rates = g.f32_tensor(&format!("{p}aaren.decay_rate"), &[h], &rates);
                    m = g.binary("Sub", &m, &rates);
                }
                let (s, v) = params.scores_and_values(&mut g, &x, 1);
                let (m2, c2, a2, y) = cell_step(&mut g, &m, &c, &a, &s, &v);
                let mixed = params.project_out(&mut g, &y, 1);
                let y = g.binary("Add", &x, &mixed);
                let y = layer_norm(&mut ctx, &mut g, &format!("{p}norm1."), &y, e, 1e-5)?;
                let f = feed_forward(&mut ctx, &mut g, &p, &y, e)?;
                let z = g.binary("Add", &y, &f);
                x = layer_norm(&mut ctx, &mut g, &format!("{p}norm2."), &z, e, 1e-5)?;
                outputs.push((a2, format!("next_state_a_{i}"), dims_a));
                outputs.push((c2, format!("next_state_c_{i}"), dims.clone()));
                outputs.push((m2, format!("next_state_m_{i}"), dims));
            }
            _ => {
                // PyTorch's GRU, gates r, z, n: n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).
                let dims = vec![batch.clone(), Dim::fixed(e)];
                let h = g.input(&format!("state_h_{i}"), &dims);
                let w_ih = ctx.weight(
                    &format!("gru.weight_ih_l{i}"),
                    &[Some(3 * e), Some(e)],
                    &["3H", "E"],
                )?;
                let w_hh = ctx.weight(
                    &format!("gru.weight_hh_l{i}"),
                    &[Some(3 * e), Some(e)],
                    &["3H", "H"],
                )?;
                let b_ih = ctx.weight(&format!("gru.bias_ih_l{i}"), &[Some(3 * e)], &["3H"])?;
                let b_hh = ctx.weight(&format!("gru.bias_hh_l{i}"), &[Some(3 * e)], &["3H"])?;
                let gate = |g: &mut GraphBuilder,
                            k: usize,
                            input: &str,
                            w: &attnkit::store::StoredTensor,
                            b: &attnkit::store::StoredTensor,
                            tag: &str| {
                    let name = format!("gru.l{i}.{tag}{k}");
                    let (w, b) = (rows(w, k * e, e), rows(b, k * e, e));
                    g.linear(
                        input,
                        &format!("{name}.weight"),
                        &w,
                        Some((&format!("{name}.bias"), &b)),
                    )
                };
                let (xr, xz, xn) = (
                    gate(&mut g, 0, &x, w_ih, b_ih, "ih"),
                    gate(&mut g, 1, &x, w_ih, b_ih, "ih"),
                    gate(&mut g, 2, &x, w_ih, b_ih, "ih"),
                );
                let (hr, hz, hn) = (
                    gate(&mut g, 0, &h, w_hh, b_hh, "hh"),
                    gate(&mut g, 1, &h, w_hh, b_hh, "hh"),
                    gate(&mut g, 2, &h, w_hh, b_hh, "hh"),
                );
                let r = g.binary("Add", &xr, &hr);
                let r = g.node("Sigmoid", &[&r], vec![]);
                let z = g.binary("Add", &xz, &hz);
                let z = g.node("Sigmoid", &[&z], vec![]);
                let rn = g.binary("Mul", &r, &hn);
                let n = g.binary("Add", &xn, &rn);
                let n = g.node("Tanh", &[&n], vec![]);
                let diff = g.binary("Sub", &h, &n);
                let zd = g.binary("Mul", &z, &diff);
                let h2 = g.binary("Add", &n, &zd);
                outputs.push((h2.clone(), format!("next_state_h_{i}"), dims));
                x = h2;
            }
        }
    }
    let w_out = ctx.weight("output.weight", &[Some(BINS), Some(e)], &["bins", "E"])?;
    let b_out = ctx.weight("output.bias", &[Some(BINS)], &["bins"])?;
    let logits = g.linear(&x, "output.weight", w_out, Some(("output.bias", b_out)));
    let gains = g.node("Sigmoid", &[&logits], vec![]);
    g.output(&gains, "gains", &[batch.clone(), Dim::fixed(BINS)]);
    for (value, name, dims) in &outputs {
        g.output(value, name, dims);
    }
    ctx.report_unused();
    let model = ModelBuilder::new(g.build())
        .doc(format!(
            "attnkit speech enhancer, one 10 ms frame: {} ({} layers of width {e})",
            config.model.name(),
            config.layers
        ))
        .metadata("attnkit.module", "enhance_step")
        .metadata("attnkit.config", json.clone())
        .build();
    Ok(Exported {
        model,
        warnings: ctx.warnings,
    })
}
