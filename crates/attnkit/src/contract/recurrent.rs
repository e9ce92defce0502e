//! `lstm`, `gru`, `rnn`: `torch.nn.LSTM/GRU/RNN(input_size, hidden_size, num_layers,
//! bidirectional=…, batch_first=True)`.

use serde::Deserialize;

use super::{Call, ModuleConfig};
use crate::error::{Result, check_result_size};
use crate::recurrent::{RecurrentConfig, RecurrentKind};
use crate::store::{TensorStore, TorchWeights};

/// The `lstm`/`gru`/`rnn` config: `input_size`, `hidden_size`, `bidirectional`
/// (default false), `num_layers` (default 1).
#[derive(Debug, Clone, Deserialize)]
pub struct RecurrentContract {
    /// Features per input step.
    pub input_size: usize,
    /// Hidden units per direction.
    pub hidden_size: usize,
    /// Adds a reverse direction whose outputs are concatenated.
    #[serde(default)]
    pub bidirectional: bool,
    /// Stacked layers.
    #[serde(default = "one")]
    pub num_layers: usize,
}

impl RecurrentContract {
    /// 1 or 2.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// PyTorch's parameter names, layer by layer, forward direction first:
    /// `weight_ih_l{k}[_reverse]`, `weight_hh_…`, `bias_ih_…`, `bias_hh_…`.
    pub fn weight_names(&self) -> Vec<String> {
        let dirs = self.directions();
        (0..self.num_layers * dirs)
            .flat_map(|i| {
                let suffix = format!(
                    "_l{}{}",
                    i / dirs,
                    if i % dirs == 1 { "_reverse" } else { "" }
                );
                ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map(|w| format!("{w}{suffix}"))
            })
            .collect()
    }
}

impl ModuleConfig for RecurrentContract {
    const KEYS: &'static [&'static str] =
        &["input_size", "hidden_size", "bidirectional", "num_layers"];

    /// The sizes, before [`RecurrentContract::weight_names`] lists a name per weight.
    fn check(&self, module: &str) -> Result<()> {
        let kind = match module {
            "gru" => RecurrentKind::Gru,
            "rnn" => RecurrentKind::Rnn,
            _ => RecurrentKind::Lstm,
        };
        RecurrentConfig::new(kind, self.input_size, self.hidden_size)
            .with_num_layers(self.num_layers)
            .with_bidirectional(self.bidirectional)
            .validate()
    }
}

fn one() -> usize {
    1
}

pub(super) fn run(call: &mut Call<'_>, kind: RecurrentKind) -> Result<TensorStore> {
    let cfg: RecurrentContract = call.config()?;
    let names = cfg.weight_names();
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
    let [b, l, _] = x.dims();
    check_result_size(
        &format!("`{}` output [B, L, directions·hidden_size]", call.module),
        &[b, l, cfg.directions(), cfg.hidden_size],
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
