//! `aaren` as ONNX: the whole sequence (`iterative`: a `Scan` over tokens; `parallel`:
//! an unrolled log-depth prefix scan) or one streaming step with the state as graph
//! inputs and outputs.
//!
//! Every form starts from the same projections. The learned query is folded into the
//! key projection at export time, in f64: for head h,
//! s_h(x) = x · (q_hᵀ W_k,h)/√d + q_h·b_k,h/√d, so scores are one `[E, H]` matmul.
//!
//! The state of the recurrence is (m, c, a): the running max score, the denominator
//! Σ exp(s − m) and the numerator Σ exp(s − m) v. The empty state is (−∞, 0, 0).
//! Combining two states uses m' = max(m₁, m₂) clamped to the most negative finite
//! float inside the exponents, so exp(−∞ − m') is exactly 0 and exp(−∞ − (−∞)) —
//! NaN — cannot occur; outputs divide by max(c, 1), which is c whenever a token has
//! been seen (its max term contributes exp(0) = 1) and turns the empty state into 0.

use attnkit::aaren::AarenMode;
use attnkit::contract::AarenContract;
use attnkit::store::StoredTensor;

use super::{Context, MaskInput, head_dim, rows};
use crate::builder::{Attr, Dim, GraphBuilder};
use crate::error::{OnnxError, Result};
use crate::ops::MOST_NEGATIVE;
use crate::proto::tensor_proto::DataType;

/// Input names of the one-step model, in order: the token and the state (a, c, m).
pub const STEP_INPUTS: [&str; 4] = ["x", "state_a", "state_c", "state_m"];

/// Output names of the one-step model: the token's output and the next state.
pub const STEP_OUTPUTS: [&str; 4] = ["output", "next_state_a", "next_state_c", "next_state_m"];

/// Score weights `[E, H]` and bias `[H]`: the query folded into the key projection.
fn folded_scores(
    query: &StoredTensor,
    w_in: &StoredTensor,
    b_in: &StoredTensor,
    e: usize,
    heads: usize,
) -> (Vec<f32>, Vec<f32>) {
    let dh = e / heads;
    let scale = 1.0 / (dh as f64).sqrt();
    let q: Vec<f64> = (0..e)
        .map(|j| {
            let row = &w_in.data[j * e..(j + 1) * e];
            let dot: f64 = row
                .iter()
                .zip(&query.data)
                .map(|(&w, &x)| w as f64 * x as f64)
                .sum();
            dot + b_in.data[j] as f64
        })
        .collect();
    let mut ws = vec![0.0f32; e * heads];
    let mut bs = vec![0.0f32; heads];
    for h in 0..heads {
        for col in 0..e {
            let acc: f64 = (h * dh..(h + 1) * dh)
                .map(|j| q[j] * w_in.data[(e + j) * e + col] as f64)
                .sum();
            ws[col * heads + h] = (acc * scale) as f32;
        }
        let acc: f64 = (h * dh..(h + 1) * dh)
            .map(|j| q[j] * b_in.data[e + j] as f64)
            .sum();
        bs[h] = (acc * scale) as f32;
    }
    (ws, bs)
}

/// One step of the recurrence on (m `[B,H]`, c `[B,H]`, a `[B,H,d]`) with score
/// `[B,H]` and value `[B,H,d]`. Returns (m', c', a', output `[B,H,d]`).
pub(super) fn cell_step(
    g: &mut GraphBuilder,
    m: &str,
    c: &str,
    a: &str,
    s: &str,
    v: &str,
) -> (String, String, String, String) {
    let (alpha, beta, m2) = rescale(g, m, s, "m_next");
    let c_old = g.binary("Mul", c, &alpha);
    let c2 = g.node_as("c_next", "Add", &[&c_old, &beta], vec![]);
    let alpha_d = g.unsqueeze(&alpha, &[2]);
    let beta_d = g.unsqueeze(&beta, &[2]);
    let a_old = g.binary("Mul", a, &alpha_d);
    let a_new = g.binary("Mul", v, &beta_d);
    let a2 = g.node_as("a_next", "Add", &[&a_old, &a_new], vec![]);
    let y = normalise(g, &a2, &c2, 2);
    (m2, c2, a2, y)
}

/// m' = max(m₁, m₂) and the factors exp(m₁ − m'), exp(m₂ − m') with the −∞ guard.
fn rescale(g: &mut GraphBuilder, m1: &str, m2: &str, name: &str) -> (String, String, String) {
    let m = g.node_as(name, "Max", &[m1, m2], vec![]);
    let floor = g.f32_scalar("most_negative", MOST_NEGATIVE);
    let safe = g.binary("Max", &m, &floor);
    let d1 = g.binary("Sub", m1, &safe);
    let d2 = g.binary("Sub", m2, &safe);
    let f1 = g.node_as("factor", "Exp", &[&d1], vec![]);
    let f2 = g.node_as("factor", "Exp", &[&d2], vec![]);
    (f1, f2, m)
}

/// a / max(c, 1) with c broadcast over the feature axis `axis`.
fn normalise(g: &mut GraphBuilder, a: &str, c: &str, axis: i64) -> String {
    let one = g.f32_scalar("one", 1.0);
    let c = g.binary("Max", c, &one);
    let c = g.unsqueeze(&c, &[axis]);
    g.node_as("attended", "Div", &[a, &c], vec![])
}

/// The Aaren layer's weights under `prefix`, ready for the graph: folded score
/// weights `[E, H]` and bias `[H]`, the value projection and the output projection.
pub(super) struct AarenParams {
    e: usize,
    heads: usize,
    dh: usize,
    score_weight: Vec<f32>,
    score_bias: Vec<f32>,
    w_v: StoredTensor,
    b_v: StoredTensor,
    w_out: StoredTensor,
    b_out: StoredTensor,
    prefix: String,
}

impl AarenParams {
    pub(super) fn read(
        ctx: &mut Context<'_>,
        prefix: &str,
        e: usize,
        heads: usize,
    ) -> Result<Self> {
        let name = |n: &str| format!("{prefix}{n}");
        if ctx
            .optional_weight(&name("log_decay"), &[Some(heads)], &["H"])?
            .is_some()
        {
            return Err(OnnxError::Unsupported {
                module: ctx.module.clone(),
                why: format!(
                    "`{}`: an Aaren layer with learned forgetting rates, which only the \
                     enhancer's one-frame cell exports",
                    name("log_decay")
                ),
            });
        }
        Self::read_weights(ctx, prefix, e, heads)
    }

    /// [`read`](Self::read) without the check for forgetting rates: for a caller that
    /// applies them itself.
    pub(super) fn read_weights(
        ctx: &mut Context<'_>,
        prefix: &str,
        e: usize,
        heads: usize,
    ) -> Result<Self> {
        let dh = head_dim(&ctx.module, e, heads)?;
        let name = |n: &str| format!("{prefix}{n}");
        let query = ctx.weight(&name("query"), &[Some(e)], &["E"])?;
        let w_in = ctx.weight(
            &name("in_proj_weight"),
            &[Some(3 * e), Some(e)],
            &["3E", "E"],
        )?;
        let b_in = ctx.weight(&name("in_proj_bias"), &[Some(3 * e)], &["3E"])?;
        let w_out = ctx.weight(&name("out_proj.weight"), &[Some(e), Some(e)], &["E", "E"])?;
        let b_out = ctx.weight(&name("out_proj.bias"), &[Some(e)], &["E"])?;
        let (score_weight, score_bias) = folded_scores(query, w_in, b_in, e, heads);
        Ok(Self {
            e,
            heads,
            dh,
            score_weight,
            score_bias,
            w_v: rows(w_in, 2 * e, e),
            b_v: rows(b_in, 2 * e, e),
            w_out: w_out.clone(),
            b_out: b_out.clone(),
            prefix: prefix.to_string(),
        })
    }

    /// Scores `[..., H]` and values `[..., H, d]` of `x` `[..., E]`; `leading` is the
    /// number of leading dimensions (1 for a token, 2 for a sequence).
    pub(super) fn scores_and_values(
        &self,
        g: &mut GraphBuilder,
        x: &str,
        leading: usize,
    ) -> (String, String) {
        let p = &self.prefix;
        let w_s = g.f32_tensor(
            &format!("{p}score_weight"),
            &[self.e, self.heads],
            &self.score_weight,
        );
        let b_s = g.f32_tensor(&format!("{p}score_bias"), &[self.heads], &self.score_bias);
        let s = g.matmul(x, &w_s);
        let s = g.node_as("scores", "Add", &[&s, &b_s], vec![]);
        let bias = format!("{p}in_proj_bias.v");
        let v = g.linear(
            x,
            &format!("{p}in_proj_weight.v"),
            &self.w_v,
            Some((&bias, &self.b_v)),
        );
        let mut shape = vec![0i64; leading];
        shape.extend([self.heads as i64, self.dh as i64]);
        let shape = g.i64_tensor("shape", &shape);
        let v = g.node_as("values", "Reshape", &[&v, &shape], vec![]);
        (s, v)
    }

    /// Heads merged back to `[..., E]` and the output projection.
    pub(super) fn project_out(&self, g: &mut GraphBuilder, y: &str, leading: usize) -> String {
        let mut shape = vec![0i64; leading];
        shape.push(self.e as i64);
        let y = g.reshape(y, &shape);
        let p = &self.prefix;
        let bias = format!("{p}out_proj.bias");
        g.linear(
            &y,
            &format!("{p}out_proj.weight"),
            &self.w_out,
            Some((&bias, &self.b_out)),
        )
    }
}

/// The Aaren layer with its weights under `prefix` on `x` `[B, L, E]`; `ignore` is
/// `[B, L]` booleans. `levels` is the doubling depth of `parallel` (exact for
/// L ≤ 2^levels). Returns `[B, L, E]`.
#[allow(clippy::too_many_arguments)] // the layer's shape, form, input and mask
pub(super) fn aaren_block(
    ctx: &mut Context<'_>,
    g: &mut GraphBuilder,
    prefix: &str,
    e: usize,
    heads: usize,
    mode: AarenMode,
    levels: u32,
    x: &str,
    ignore: Option<&str>,
) -> Result<String> {
    let params = AarenParams::read(ctx, prefix, e, heads)?;
    let (mut s, v) = params.scores_and_values(g, x, 2);
    if let Some(ignore) = ignore {
        let ignore = g.unsqueeze(ignore, &[2]);
        let ninf = g.f32_scalar("neg_inf", f32::NEG_INFINITY);
        s = g.node_as("scores_masked", "Where", &[&ignore, &ninf, &s], vec![]);
    }
    let y = match mode {
        // `fused` is the same sequential recurrence as `iterative`.
        AarenMode::Iterative | AarenMode::Fused => scan_over_tokens(g, x, &s, &v, heads, params.dh),
        AarenMode::Parallel => prefix_doubling(g, x, &s, &v, levels),
    };
    Ok(params.project_out(g, &y, 2))
}

/// Doubling levels covering `max_len` tokens.
pub(super) fn levels_for(max_len: usize) -> u32 {
    max_len.max(2).next_power_of_two().trailing_zeros()
}

/// The exported Aaren layer: `[B, L, E]` (or `[B, E]` for the step form) in and out.
pub(super) fn aaren(ctx: &mut Context<'_>, cfg: &AarenContract) -> Result<GraphBuilder> {
    let (e, heads) = (cfg.embed_dim, cfg.num_heads);
    if ctx.options.aaren_step {
        // The step form has no mask input: a caller skips the call for a masked token.
        if ctx.options.mask == MaskInput::Absent {
            ctx.warnings
                .push("the `aaren` step form has no `key_padding_mask` input to leave out".into());
        }
        let params = AarenParams::read(ctx, "", e, heads)?;
        let mut g = GraphBuilder::new("aaren_step");
        let batch = Dim::named("B");
        let x = g.input(STEP_INPUTS[0], &[batch.clone(), Dim::fixed(e)]);
        let state_dims_a = [batch.clone(), Dim::fixed(heads), Dim::fixed(params.dh)];
        let state_dims = [batch.clone(), Dim::fixed(heads)];
        let a = g.input(STEP_INPUTS[1], &state_dims_a);
        let c = g.input(STEP_INPUTS[2], &state_dims);
        let m = g.input(STEP_INPUTS[3], &state_dims);
        let (s, v) = params.scores_and_values(&mut g, &x, 1);
        let (m2, c2, a2, y) = cell_step(&mut g, &m, &c, &a, &s, &v);
        let out = params.project_out(&mut g, &y, 1);
        g.output(&out, STEP_OUTPUTS[0], &[batch.clone(), Dim::fixed(e)]);
        g.output(&a2, STEP_OUTPUTS[1], &state_dims_a);
        g.output(&c2, STEP_OUTPUTS[2], &state_dims);
        g.output(&m2, STEP_OUTPUTS[3], &state_dims);
        return Ok(g);
    }
    let mut g = GraphBuilder::new(match cfg.mode {
        AarenMode::Iterative | AarenMode::Fused => "aaren_iterative",
        AarenMode::Parallel => "aaren_parallel",
    });
    let seq = [Dim::named("B"), Dim::named("L"), Dim::fixed(e)];
    let x = g.input("x", &seq);
    let ignore = ctx.mask_input(&mut g, "B", "L");
    let levels = levels_for(ctx.options.max_len);
    let out = aaren_block(
        ctx,
        &mut g,
        "",
        e,
        heads,
        cfg.mode,
        levels,
        &x,
        ignore.as_deref(),
    )?;
    g.output(&out, "output", &seq);
    Ok(g)
}

/// `iterative`: a `Scan` whose body is [`cell_step`], over scores `[B,L,H]` and values
/// `[B,L,H,d]` along axis 1. Returns the outputs `[B,L,H,d]`.
fn scan_over_tokens(
    g: &mut GraphBuilder,
    x: &str,
    s: &str,
    v: &str,
    heads: usize,
    dh: usize,
) -> String {
    let mut body = GraphBuilder::subgraph("aaren_cell", "cell/");
    let float = DataType::Float;
    // Body dimensions stay unset: runtimes take them from the outer graph.
    let m = body.typed_input("cell/m", float, None);
    let c = body.typed_input("cell/c", float, None);
    let a = body.typed_input("cell/a", float, None);
    let s_t = body.typed_input("cell/s_t", float, None);
    let v_t = body.typed_input("cell/v_t", float, None);
    let (m2, c2, a2, y) = cell_step(&mut body, &m, &c, &a, &s_t, &v_t);
    body.typed_output(&m2, "cell/m_out", None);
    body.typed_output(&c2, "cell/c_out", None);
    body.typed_output(&a2, "cell/a_out", None);
    body.typed_output(&y, "cell/y_t", None);
    let body = body.build();

    let batch = g.dim_of(x, 0);
    let h = g.i64_tensor("heads", &[heads as i64]);
    let hd = g.i64_tensor("heads_and_head_dim", &[heads as i64, dh as i64]);
    let shape_bh = g.concat(&[&batch, &h], 0);
    let shape_bhd = g.concat(&[&batch, &hd], 0);
    let m0 = g.filled(&shape_bh, f32::NEG_INFINITY);
    let c0 = g.filled(&shape_bh, 0.0);
    let a0 = g.filled(&shape_bhd, 0.0);
    let outs = g.node_named(
        "Scan",
        &[&m0, &c0, &a0, s, v],
        &["m_last", "c_last", "a_last", "attended"],
        vec![
            ("body", Attr::Graph(Box::new(body))),
            ("num_scan_inputs", Attr::Int(2)),
            ("scan_input_axes", Attr::Ints(vec![1, 1])),
            ("scan_output_axes", Attr::Ints(vec![1])),
        ],
    );
    outs[3].clone()
}

/// `parallel`: the inclusive prefix scan of (m, c, a) by Hillis–Steele doubling,
/// unrolled for `levels` steps (exact for L ≤ 2^levels). Step k combines each
/// position with the one 2^k before it; positions before the start see the empty
/// state, put there by `Pad` and a `Slice` that drops the last 2^k. Positions at or
/// beyond 2^levels come out NaN rather than silently missing tokens.
fn prefix_doubling(g: &mut GraphBuilder, x: &str, s: &str, v: &str, levels: u32) -> String {
    // Leaves: (s, 1, v) for a token, the empty state (−∞, 0, 0) where masked.
    let floor = g.f32_scalar("most_negative", MOST_NEGATIVE);
    let s_safe = g.binary("Max", s, &floor);
    let diff = g.binary("Sub", s, &s_safe);
    let mut c = g.node_as("c_0", "Exp", &[&diff], vec![]);
    let c_d = g.unsqueeze(&c, &[3]);
    let mut a = g.node_as("a_0", "Mul", &[v, &c_d], vec![]);
    let mut m = s.to_string();
    for k in 0..levels {
        let shift = 1i64 << k;
        let m_pad = g.pad_front(&m, 3, 1, shift, f32::NEG_INFINITY);
        let m_prev = g.slice(&m_pad, 1, 0, -shift);
        let c_pad = g.pad_front(&c, 3, 1, shift, 0.0);
        let c_prev = g.slice(&c_pad, 1, 0, -shift);
        let a_pad = g.pad_front(&a, 4, 1, shift, 0.0);
        let a_prev = g.slice(&a_pad, 1, 0, -shift);
        let level = k + 1;
        let (f_prev, f_cur, m2) = rescale(g, &m_prev, &m, &format!("m_{level}"));
        let c_old = g.binary("Mul", &c_prev, &f_prev);
        let c_new = g.binary("Mul", &c, &f_cur);
        let c2 = g.node_as(&format!("c_{level}"), "Add", &[&c_old, &c_new], vec![]);
        let f_prev_d = g.unsqueeze(&f_prev, &[3]);
        let f_cur_d = g.unsqueeze(&f_cur, &[3]);
        let a_old = g.binary("Mul", &a_prev, &f_prev_d);
        let a_new = g.binary("Mul", &a, &f_cur_d);
        let a2 = g.node_as(&format!("a_{level}"), "Add", &[&a_old, &a_new], vec![]);
        m = m2;
        c = c2;
        a = a2;
    }
    let y = normalise(g, &a, &c, 3);
    // NaN from position 2^levels on.
    let shape = g.node("Shape", &[x], vec![]);
    let axis = g.i64_scalar("seq_axis", 1);
    let len = g.node("Gather", &[&shape, &axis], vec![("axis", Attr::Int(0))]);
    let zero = g.i64_scalar("zero", 0);
    let one = g.i64_scalar("one_i64", 1);
    let pos = g.node_as("positions", "Range", &[&zero, &len, &one], vec![]);
    let limit = g.i64_scalar("max_len", 1i64 << levels);
    let covered = g.node_as("covered", "Less", &[&pos, &limit], vec![]);
    let covered = g.reshape(&covered, &[1, -1, 1, 1]);
    let nan = g.f32_scalar("nan", f32::NAN);
    g.where_(&covered, &y, &nan)
}
