//! `lstm`, `gru`, `rnn`: `torch.nn.LSTM/GRU/RNN(input_size, hidden_size, num_layers,
//! bidirectional=…, batch_first=True)`.

use serde::Deserialize;

use super::Call;
use crate::error::Result;
use crate::recurrent::{RecurrentConfig, RecurrentKind};
use crate::store::{TensorStore, TorchWeights};

#[derive(Deserialize)]
struct Config {
    input_size: usize,
    hidden_size: usize,
    #[serde(default)]
    bidirectional: bool,
    #[serde(default = "one")]
    num_layers: usize,
}

fn one() -> usize {
    1
}

pub(super) fn run(call: &mut Call<'_>, kind: RecurrentKind) -> Result<TensorStore> {
    let cfg: Config = call.config(&["input_size", "hidden_size", "bidirectional", "num_layers"])?;
    let dirs = if cfg.bidirectional { 2 } else { 1 };
    let names: Vec<String> = (0..cfg.num_layers * dirs)
        .flat_map(|i| {
            let suffix = format!(
                "_l{}{}",
                i / dirs,
                if i % dirs == 1 { "_reverse" } else { "" }
            );
            ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map(|w| format!("{w}{suffix}"))
        })
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let weights = call.weights(&refs)?;
    let net = RecurrentConfig::new(kind, cfg.input_size, cfg.hidden_size)
        .with_num_layers(cfg.num_layers)
        .with_bidirectional(cfg.bidirectional)
        .init(call.device)?
        .load_weights(weights, "")?;
    let x = call.input(
        "x",
        [None, None, Some(cfg.input_size)],
        ["B", "L", "input_size"],
    )?;
    let out = net.forward(x, None)?;
    let mut store = TensorStore::new("outputs");
    store.insert_tensor("output", out.output);
    store.insert_tensor("h_n", out.h_n);
    if let Some(c_n) = out.c_n {
        store.insert_tensor("c_n", c_n);
    }
    Ok(store)
}
