//! `sdpa`, `mha` and `external` as ONNX graphs.

use attnkit::contract::{ExternalContract, MhaContract, SdpaContract};

use super::{Context, head_dim, rows};
use crate::builder::{Attr, Dim, GraphBuilder};
use crate::error::Result;
use crate::proto::tensor_proto::DataType;

fn dims(names: &[&str]) -> Vec<Dim> {
    names.iter().map(|n| Dim::named(n)).collect()
}

/// `[Lq, Lk]` booleans, true where key j > query i (top-left aligned, as PyTorch's
/// `is_causal`).
fn causal_ignore(g: &mut GraphBuilder, query: &str, key: &str, len_axis: i64) -> String {
    let zero = g.i64_scalar("zero", 0);
    let one = g.i64_scalar("one_i64", 1);
    let range = |g: &mut GraphBuilder, x: &str| {
        let shape = g.node("Shape", &[x], vec![]);
        let axis = g.i64_scalar("len_axis", len_axis);
        let len = g.node("Gather", &[&shape, &axis], vec![("axis", Attr::Int(0))]);
        g.node("Range", &[&zero, &len, &one], vec![])
    };
    let rows = range(g, query);
    let cols = range(g, key);
    let rows = g.unsqueeze(&rows, &[1]);
    let cols = g.unsqueeze(&cols, &[0]);
    g.binary("Greater", &cols, &rows)
}

/// Softmax attention on `[B, H, Lq, D]` queries and `[B, H, Lk, ·]` keys/values;
/// `pad_ignore` is `[B, Lk]` booleans. Returns (context, weights).
fn attend(
    g: &mut GraphBuilder,
    q: &str,
    k: &str,
    v: &str,
    scale: &str,
    pad_ignore: Option<&str>,
    causal: bool,
) -> (String, String) {
    let scaled = g.binary("Mul", q, scale);
    let kt = g.transpose(k, &[0, 1, 3, 2]);
    let scores = g.matmul(&scaled, &kt);
    let pad = pad_ignore.map(|m| g.unsqueeze(m, &[1, 2]));
    let causal = causal.then(|| causal_ignore(g, q, k, 2));
    let ignore = match (pad, causal) {
        (Some(p), Some(c)) => Some(g.binary("Or", &p, &c)),
        (p, c) => p.or(c),
    };
    let weights = g.masked_softmax(&scores, ignore.as_deref(), 3);
    let context = g.matmul(&weights, v);
    (context, weights)
}

/// `sdpa`: inputs `query` `[B,H,Lq,D]`, `key` `[B,H,Lk,D]`, `value` `[B,H,Lk,Dv]`,
/// `key_padding_mask` `[B,Lk]`; outputs `output` `[B,H,Lq,Dv]`, `weights`
/// `[B,H,Lq,Lk]`.
pub(super) fn sdpa(ctx: &mut Context<'_>, cfg: &SdpaContract) -> Result<GraphBuilder> {
    let mut g = GraphBuilder::new("sdpa");
    let q = g.input("query", &dims(&["B", "H", "Lq", "D"]));
    let k = g.input("key", &dims(&["B", "H", "Lk", "D"]));
    let v = g.input("value", &dims(&["B", "H", "Lk", "Dv"]));
    let mask = ctx.mask_input(&mut g, "B", "Lk");
    let scale = match cfg.scale {
        Some(s) => g.f32_scalar("scale", s as f32),
        None => {
            // 1/√D from the query's last dimension, so D stays dynamic.
            let d = g.dim_of(&q, 3);
            let d = g.node(
                "Cast",
                &[&d],
                vec![("to", Attr::Int(DataType::Float as i64))],
            );
            let root = g.node("Sqrt", &[&d], vec![]);
            g.node("Reciprocal", &[&root], vec![])
        }
    };
    let (context, weights) = attend(&mut g, &q, &k, &v, &scale, mask.as_deref(), cfg.causal);
    g.output(&context, "output", &dims(&["B", "H", "Lq", "Dv"]));
    g.output(&weights, "weights", &dims(&["B", "H", "Lq", "Lk"]));
    Ok(g)
}

/// `[B, L, E]` → `[B, heads, L, E/heads]`.
fn split_heads(g: &mut GraphBuilder, x: &str, heads: usize, head_dim: usize) -> String {
    let r = g.reshape(x, &[0, 0, heads as i64, head_dim as i64]);
    g.transpose(&r, &[0, 2, 1, 3])
}

/// Multi-head attention with `nn.MultiheadAttention`'s weights under `prefix`
/// (`{prefix}in_proj_weight`, …; biases optional) on `query` `[B,Lq,E]` and
/// `key`/`value` `[B,Lk,E]`; `ignore` is `[B,Lk]` booleans. Returns the output
/// `[B,Lq,E]` and the per-head weights `[B,H,Lq,Lk]`.
#[allow(clippy::too_many_arguments)] // the four tensors of attention, plus where and how wide
pub(super) fn mha_block(
    ctx: &mut Context<'_>,
    g: &mut GraphBuilder,
    prefix: &str,
    cfg: &MhaContract,
    query: &str,
    key: &str,
    value: &str,
    ignore: Option<&str>,
) -> Result<(String, String)> {
    let e = cfg.embed_dim;
    let dh = head_dim(&ctx.module, e, cfg.num_heads)?;
    let w_in = ctx.weight(
        &format!("{prefix}in_proj_weight"),
        &[Some(3 * e), Some(e)],
        &["3E", "E"],
    )?;
    let b_in = ctx.optional_weight(&format!("{prefix}in_proj_bias"), &[Some(3 * e)], &["3E"])?;
    let w_out = ctx.weight(
        &format!("{prefix}out_proj.weight"),
        &[Some(e), Some(e)],
        &["E", "E"],
    )?;
    let b_out = ctx.optional_weight(&format!("{prefix}out_proj.bias"), &[Some(e)], &["E"])?;
    let project = |g: &mut GraphBuilder, x: &str, i: usize, tag: &str| {
        let w = rows(w_in, i * e, e);
        let b = b_in.map(|b| rows(b, i * e, e));
        let bias_name = format!("{prefix}in_proj_bias.{tag}");
        let y = g.linear(
            x,
            &format!("{prefix}in_proj_weight.{tag}"),
            &w,
            b.as_ref().map(|b| (bias_name.as_str(), b)),
        );
        split_heads(g, &y, cfg.num_heads, dh)
    };
    let q = project(g, query, 0, "q");
    let k = project(g, key, 1, "k");
    let v = project(g, value, 2, "v");
    let scale = g.f32_scalar("scale", (1.0 / (dh as f64).sqrt()) as f32);
    let (context, weights) = attend(g, &q, &k, &v, &scale, ignore, false);
    let merged = g.transpose(&context, &[0, 2, 1, 3]);
    let merged = g.reshape(&merged, &[0, 0, e as i64]);
    let out_bias = format!("{prefix}out_proj.bias");
    let out = g.linear(
        &merged,
        &format!("{prefix}out_proj.weight"),
        w_out,
        b_out.map(|b| (out_bias.as_str(), b)),
    );
    Ok((out, weights))
}

/// `mha`: `nn.MultiheadAttention(batch_first=True)`. Inputs `query` `[B,Lq,E]`,
/// `key`, `value` `[B,Lk,E]`, `key_padding_mask` `[B,Lk]`; outputs `output`
/// `[B,Lq,E]`, `weights` `[B,Lq,Lk]` (mean over heads).
pub(super) fn mha(ctx: &mut Context<'_>, cfg: &MhaContract) -> Result<GraphBuilder> {
    let e = cfg.embed_dim;
    let mut g = GraphBuilder::new("mha");
    let dims_e = |l: &str| [Dim::named("B"), Dim::named(l), Dim::fixed(e)];
    let query = g.input("query", &dims_e("Lq"));
    let key = g.input("key", &dims_e("Lk"));
    let value = g.input("value", &dims_e("Lk"));
    let mask = ctx.mask_input(&mut g, "B", "Lk");
    let (out, weights) = mha_block(ctx, &mut g, "", cfg, &query, &key, &value, mask.as_deref())?;
    let mean = g.node(
        "ReduceMean",
        &[&weights],
        vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))],
    );
    g.output(&out, "output", &dims_e("Lq"));
    g.output(&mean, "weights", &dims(&["B", "Lq", "Lk"]));
    Ok(g)
}

/// `external`: A = x·mkᵀ, softmax over the N axis, each row divided by its sum over
/// the memory (a zero row stays zero), then A·mvᵀ. Input `x` `[B,N,d]`, output
/// `output` `[B,N,d]`.
pub(super) fn external(ctx: &mut Context<'_>, cfg: &ExternalContract) -> Result<GraphBuilder> {
    let (d, s) = (cfg.d_model, cfg.memory);
    let mk = ctx.weight("mk.weight", &[Some(s), Some(d)], &["S", "d"])?;
    let mv = ctx.weight("mv.weight", &[Some(d), Some(s)], &["d", "S"])?;
    let mut g = GraphBuilder::new("external");
    let x = g.input("x", &[Dim::named("B"), Dim::named("N"), Dim::fixed(d)]);
    let a = g.linear(&x, "mk.weight", mk, None);
    let a = g.masked_softmax(&a, None, 1);
    let sum = g.reduce_sum_keep(&a, &[2]);
    let zero = g.f32_scalar("zero", 0.0);
    let one = g.f32_scalar("one", 1.0);
    let is_zero = g.binary("Equal", &sum, &zero);
    let sum = g.where_(&is_zero, &one, &sum);
    let a = g.binary("Div", &a, &sum);
    let out = g.linear(&a, "mv.weight", mv, None);
    g.output(
        &out,
        "output",
        &[Dim::named("B"), Dim::named("N"), Dim::fixed(d)],
    );
    Ok(g)
}
