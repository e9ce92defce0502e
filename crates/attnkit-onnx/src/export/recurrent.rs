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
