//! `lstm`, `gru`, `rnn` as ONNX's own `LSTM`, `GRU` and `RNN` operators, one node per
//! layer, with PyTorch's weights reordered to ONNX's gate order.

use attnkit::contract::RecurrentContract;
use attnkit::store::StoredTensor;

use super::{Context, rows};
use crate::builder::{Attr, Dim, GraphBuilder};
use crate::error::Result;

/// Gate blocks in ONNX order, as indices of PyTorch's blocks: LSTM i,o,f,c from
/// PyTorch's i,f,g,o; GRU z,r,h from r,z,n; RNN has one block.
fn gate_order(module: &str) -> &'static [usize] {
    match module {
        "lstm" => &[0, 3, 1, 2],
        "gru" => &[1, 0, 2],
        _ => &[0],
    }
}

fn reorder(t: &StoredTensor, order: &[usize], hidden: usize, out: &mut Vec<f32>) {
    for &block in order {
        out.extend_from_slice(&rows(t, block * hidden, hidden).data);
    }
}

/// Inputs `x` `[B,L,In]`; outputs `output` `[B,L,dirs·H]`, `h_n` `[dirs·layers,B,H]`
/// and, for LSTM, `c_n`.
pub(super) fn recurrent(ctx: &mut Context<'_>, cfg: &RecurrentContract) -> Result<GraphBuilder> {
    let module = ctx.module.clone();
    let op = match module.as_str() {
        "lstm" => "LSTM",
        "gru" => "GRU",
        _ => "RNN",
    };
    if cfg.num_layers == 0 || cfg.hidden_size == 0 || cfg.input_size == 0 {
        return Err(attnkit::AttnError::Config(format!(
            "`{module}`: input_size, hidden_size and num_layers must be positive, got {}, {}, {}",
            cfg.input_size, cfg.hidden_size, cfg.num_layers
        ))
        .into());
    }
    let order = gate_order(&module);
    let gates = order.len();
    let hidden = cfg.hidden_size;
    let dirs = cfg.directions();
    let mut g = GraphBuilder::new(&module);
    let batch = Dim::named("B");
    let x = g.input(
        "x",
        &[batch.clone(), Dim::named("L"), Dim::fixed(cfg.input_size)],
    );
    // ONNX's recurrent ops take [L, B, In] (layout 0 is the one every runtime has).
    let mut layer_in = g.transpose(&x, &[1, 0, 2]);
    let mut h_last = Vec::new();
    let mut c_last = Vec::new();
    let mut y_last = String::new();
    for layer in 0..cfg.num_layers {
        let in_size = if layer == 0 {
            cfg.input_size
        } else {
            dirs * hidden
        };
        let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for dir in 0..dirs {
            let suffix = format!("_l{layer}{}", if dir == 1 { "_reverse" } else { "" });
            let gh = gates * hidden;
            let w_ih = ctx.weight(
                &format!("weight_ih{suffix}"),
                &[Some(gh), Some(in_size)],
                &["gates·H", "In"],
            )?;
            let w_hh = ctx.weight(
                &format!("weight_hh{suffix}"),
                &[Some(gh), Some(hidden)],
                &["gates·H", "H"],
            )?;
            let b_ih = ctx.weight(&format!("bias_ih{suffix}"), &[Some(gh)], &["gates·H"])?;
            let b_hh = ctx.weight(&format!("bias_hh{suffix}"), &[Some(gh)], &["gates·H"])?;
            reorder(w_ih, order, hidden, &mut w);
            reorder(w_hh, order, hidden, &mut r);
            reorder(b_ih, order, hidden, &mut b);
            reorder(b_hh, order, hidden, &mut b);
        }
        let w = g.f32_tensor(&format!("W_l{layer}"), &[dirs, gates * hidden, in_size], &w);
        let r = g.f32_tensor(&format!("R_l{layer}"), &[dirs, gates * hidden, hidden], &r);
        let b = g.f32_tensor(&format!("B_l{layer}"), &[dirs, 2 * gates * hidden], &b);
        let mut attrs = vec![
            ("hidden_size", Attr::Int(hidden as i64)),
            (
                "direction",
                Attr::Str(
                    if dirs == 2 {
                        "bidirectional"
                    } else {
                        "forward"
                    }
                    .into(),
                ),
            ),
        ];
        if op == "GRU" {
            // PyTorch applies the reset gate after the recurrent matmul.
            attrs.push(("linear_before_reset", Attr::Int(1)));
        }
        let n_out = if op == "LSTM" { 3 } else { 2 };
        let outs = g.node_n(op, &[&layer_in, &w, &r, &b], n_out, attrs);
        // Y is [L, dirs, B, H]: directions side by side per step for the next layer.
        let y = g.transpose(&outs[0], &[0, 2, 1, 3]);
        layer_in = g.reshape(&y, &[0, 0, -1]);
        y_last = outs[0].clone();
        h_last.push(outs[1].clone());
        if op == "LSTM" {
            c_last.push(outs[2].clone());
        }
    }
    let y = g.transpose(&y_last, &[2, 0, 1, 3]);
    let output = g.reshape(&y, &[0, 0, -1]);
    let state = [
        Dim::fixed(dirs * cfg.num_layers),
        batch.clone(),
        Dim::fixed(hidden),
    ];
    g.output(
        &output,
        "output",
        &[batch.clone(), Dim::named("L"), Dim::fixed(dirs * hidden)],
    );
    let refs: Vec<&str> = h_last.iter().map(String::as_str).collect();
    let h_n = g.concat(&refs, 0);
    g.output(&h_n, "h_n", &state);
    if op == "LSTM" {
        let refs: Vec<&str> = c_last.iter().map(String::as_str).collect();
        let c_n = g.concat(&refs, 0);
        g.output(&c_n, "c_n", &state);
    }
    Ok(g)
}

/// The final hidden state of a one-layer `lstm`/`gru`/`rnn` (weights under `prefix`,
/// PyTorch names) over `x` `[B, L, In]` where only steps with `valid` `[B, L, 1]` true
/// count: each direction is a `Scan` whose body keeps the state unchanged on invalid
/// steps, so the forward direction stops and the reverse one starts at each
/// sequence's true end. Returns `[B, dirs·H]` (forward first), as PyTorch's
/// `h_n.transpose(0, 1).reshape(B, -1)` of a packed sequence.
///
/// ONNX's own recurrent operators take `sequence_lens`, but runtimes differ in
/// supporting it (tract refuses a non-constant one); this form runs everywhere.
#[allow(clippy::too_many_arguments)] // the recurrent net's shape, its input and mask
pub(super) fn masked_final_state(
    ctx: &mut Context<'_>,
    g: &mut GraphBuilder,
    prefix: &str,
    module: &str,
    input_size: usize,
    hidden: usize,
    bidirectional: bool,
    x: &str,
    valid: &str,
) -> Result<String> {
    let gates = gate_order(module).len();
    let gh = gates * hidden;
    let batch = g.dim_of(x, 0);
    let h_dim = g.i64_tensor("hidden", &[hidden as i64]);
    let state_shape = g.concat(&[&batch, &h_dim], 0);
    let mut finals = Vec::new();
    for dir in 0..if bidirectional { 2 } else { 1 } {
        let suffix = format!("_l0{}", if dir == 1 { "_reverse" } else { "" });
        let w_ih = ctx.weight(
            &format!("{prefix}weight_ih{suffix}"),
            &[Some(gh), Some(input_size)],
            &["gates·H", "In"],
        )?;
        let w_hh = ctx.weight(
            &format!("{prefix}weight_hh{suffix}"),
            &[Some(gh), Some(hidden)],
            &["gates·H", "H"],
        )?;
        let b_ih = ctx.weight(
            &format!("{prefix}bias_ih{suffix}"),
            &[Some(gh)],
            &["gates·H"],
        )?;
        let b_hh = ctx.weight(
            &format!("{prefix}bias_hh{suffix}"),
            &[Some(gh)],
            &["gates·H"],
        )?;
        let tag = format!("{module}{suffix}/");
        let mut body = GraphBuilder::subgraph(&format!("{module}{suffix}"), &tag);
        let float = crate::proto::tensor_proto::DataType::Float;
        let h = body.typed_input(&format!("{tag}h"), float, None);
        let c = (module == "lstm").then(|| body.typed_input(&format!("{tag}c"), float, None));
        let x_t = body.typed_input(&format!("{tag}x_t"), float, None);
        let valid_t = body.typed_input(
            &format!("{tag}valid_t"),
            crate::proto::tensor_proto::DataType::Bool,
            None,
        );
        // Names inside the body get its prefix from the builder.
        let gi = body.linear(&x_t, "weight_ih", w_ih, Some(("bias_ih", b_ih)));
        let gh_ = body.linear(&h, "weight_hh", w_hh, Some(("bias_hh", b_hh)));
        let block = |body: &mut GraphBuilder, t: &str, k: usize| {
            body.slice(t, 1, (k * hidden) as i64, ((k + 1) * hidden) as i64)
        };
        let (h_next, c_next) = match module {
            "lstm" => {
                let sum = body.binary("Add", &gi, &gh_);
                let i = block(&mut body, &sum, 0);
                let f = block(&mut body, &sum, 1);
                let gg = block(&mut body, &sum, 2);
                let o = block(&mut body, &sum, 3);
                let i = body.node("Sigmoid", &[&i], vec![]);
                let f = body.node("Sigmoid", &[&f], vec![]);
                let gg = body.node("Tanh", &[&gg], vec![]);
                let o = body.node("Sigmoid", &[&o], vec![]);
                let c = c.as_deref().expect("lstm has a cell state");
                let fc = body.binary("Mul", &f, c);
                let ig = body.binary("Mul", &i, &gg);
                let c2 = body.binary("Add", &fc, &ig);
                let tc = body.node("Tanh", &[&c2], vec![]);
                (body.binary("Mul", &o, &tc), Some(c2))
            }
            "gru" => {
                // r, z, n as PyTorch: n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).
                let (ir, iz, inn) = (
                    block(&mut body, &gi, 0),
                    block(&mut body, &gi, 1),
                    block(&mut body, &gi, 2),
                );
                let (hr, hz, hn) = (
                    block(&mut body, &gh_, 0),
                    block(&mut body, &gh_, 1),
                    block(&mut body, &gh_, 2),
                );
                let r = body.binary("Add", &ir, &hr);
                let r = body.node("Sigmoid", &[&r], vec![]);
                let z = body.binary("Add", &iz, &hz);
                let z = body.node("Sigmoid", &[&z], vec![]);
                let rh = body.binary("Mul", &r, &hn);
                let n = body.binary("Add", &inn, &rh);
                let n = body.node("Tanh", &[&n], vec![]);
                // (1 − z) ⊙ n + z ⊙ h = n + z ⊙ (h − n)
                let d = body.binary("Sub", &h, &n);
                let zd = body.binary("Mul", &z, &d);
                (body.binary("Add", &n, &zd), None)
            }
            _ => {
                let sum = body.binary("Add", &gi, &gh_);
                (body.node("Tanh", &[&sum], vec![]), None)
            }
        };
        let h_out = body.where_(&valid_t, &h_next, &h);
        body.typed_output(&h_out, &format!("{tag}h_out"), None);
        if let (Some(c), Some(c_next)) = (&c, &c_next) {
            let c_out = body.where_(&valid_t, c_next, c);
            body.typed_output(&c_out, &format!("{tag}c_out"), None);
        }
        body.typed_output(&h_out, &format!("{tag}y_t"), None);
        let body = body.build();
        let h0 = g.filled(&state_shape, 0.0);
        let mut inputs = vec![h0.clone()];
        if module == "lstm" {
            inputs.push(g.filled(&state_shape, 0.0));
        }
        inputs.push(x.to_string());
        inputs.push(valid.to_string());
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let direction = dir as i64;
        let outs = g.node_n(
            "Scan",
            &refs,
            if module == "lstm" { 3 } else { 2 },
            vec![
                ("body", Attr::Graph(Box::new(body))),
                ("num_scan_inputs", Attr::Int(2)),
                ("scan_input_axes", Attr::Ints(vec![1, 1])),
                (
                    "scan_input_directions",
                    Attr::Ints(vec![direction, direction]),
                ),
                ("scan_output_axes", Attr::Ints(vec![1])),
                ("scan_output_directions", Attr::Ints(vec![direction])),
            ],
        );
        finals.push(outs[0].clone());
    }
    let refs: Vec<&str> = finals.iter().map(String::as_str).collect();
    Ok(if refs.len() == 1 {
        refs[0].to_string()
    } else {
        g.concat(&refs, 1)
    })
}
