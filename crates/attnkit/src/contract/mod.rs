//! The module contract: run one module on named tensors.
//!
//! `attnkit forward --module NAME --config JSON --weights FILE --input FILE --output FILE`
//! is a thin shell around [`forward`]: the config is a JSON object, weights and inputs
//! are [`TensorStore`]s read from safetensors files, and the outputs come back as a
//! store. Every problem — an unknown module, a missing key, a tensor of the wrong shape,
//! a mask that is not 0/1 — is an [`AttnError`] naming what was expected and what was
//! found. Keys, inputs or weights that the module does not read are reported back as
//! warnings, since a typo there would otherwise silently change nothing.
//!
//! | module | config keys | weights | inputs | outputs |
//! | --- | --- | --- | --- | --- |
//! | `sdpa` | `causal`, `scale` (optional) | none | `query` `[B,H,Lq,D]`, `key` `[B,H,Lk,D]`, `value` `[B,H,Lk,Dv]`, `key_padding_mask` `[B,Lk]` (optional) | `output` `[B,H,Lq,Dv]`, `weights` `[B,H,Lq,Lk]` |
//! | `mha` | `embed_dim`, `num_heads` | `in_proj_weight`, `in_proj_bias`, `out_proj.weight`, `out_proj.bias` | `query` `[B,Lq,E]`, `key`, `value` `[B,Lk,E]`, `key_padding_mask` `[B,Lk]` (optional) | `output` `[B,Lq,E]`, `weights` `[B,Lq,Lk]` (mean over heads) |
//! | `external` | `d_model`, `memory` | `mk.weight` `[S,d]`, `mv.weight` `[d,S]` | `x` `[B,N,d]` | `output` `[B,N,d]` |
//! | `lstm`, `gru`, `rnn` | `input_size`, `hidden_size`, `bidirectional`, `num_layers` (optional, 1) | as `nn.LSTM`/`nn.GRU`/`nn.RNN`: `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, and `…_reverse` | `x` `[B,L,In]` | `output` `[B,L,dirs·H]`, `h_n` `[dirs·layers,B,H]` (and `c_n` for LSTM) |
//! | `aaren` | `embed_dim`, `num_heads`, `mode` (`iterative`, `parallel` or `fused` (CPU inference); default `parallel`) | `query` `[E]`, `in_proj_weight` `[3E,E]`, `in_proj_bias` `[3E]`, `out_proj.weight` `[E,E]`, `out_proj.bias` `[E]` | `x` `[B,L,E]`, `key_padding_mask` `[B,L]` (optional) | `output` `[B,L,E]` |
//!
//! Masks are 0/1 floats where 1 means "ignore this key".

mod aaren;
mod external;
mod mha;
mod recurrent;
mod sdpa;

pub use aaren::AarenContract;
pub use external::ExternalContract;
pub use mha::MhaContract;
pub use recurrent::RecurrentContract;
pub use sdpa::SdpaContract;

use std::collections::BTreeSet;

use burn::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{AttnError, Result};
use crate::store::TensorStore;

/// The modules `forward` knows, in the order the help lists them.
pub const MODULES: &[&str] = &["sdpa", "mha", "external", "aaren", "lstm", "gru", "rnn"];

/// The outputs of a contract call and any warnings about ignored keys or tensors.
#[derive(Debug)]
pub struct ForwardResult {
    /// The output tensors, by contract name.
    pub outputs: TensorStore,
    /// Things the caller passed that the module did not use.
    pub warnings: Vec<String>,
}

/// Parses a config: `text` is either an inline JSON object or read from a file named
/// `source_name` (used in errors, which carry line and column).
///
/// # Errors
///
/// [`AttnError::Json`] with line and column if `text` is not JSON, [`AttnError::Config`] if
/// it is not an object.
pub fn parse_config(text: &str, source_name: &str) -> Result<Value> {
    let value: Value = serde_json::from_str(text).map_err(|e| AttnError::Json {
        source_name: source_name.to_string(),
        line: e.line(),
        column: e.column(),
        why: strip_position(&e.to_string()),
    })?;
    if !value.is_object() {
        return Err(AttnError::Config(format!(
            "{source_name}: expected a JSON object such as {{\"embed_dim\": 8, \"num_heads\": 2}}, got {}",
            json_kind(&value)
        )));
    }
    Ok(value)
}

/// Runs module `name` with `config` on `inputs` (and `weights` where it has any).
///
/// # Errors
///
/// [`AttnError::UnknownModule`] for a name not in [`MODULES`]; otherwise the module's
/// refusal, naming what was expected and what was found: a config key missing or out of
/// range ([`AttnError::Config`]), a tensor missing from a file
/// ([`AttnError::MissingTensor`]), a shape that does not fit ([`AttnError::Shape`]), a mask
/// that is not 0/1 or a result over 2^31 elements ([`AttnError::Value`]).
pub fn forward(
    name: &str,
    config: &Value,
    weights: Option<&TensorStore>,
    inputs: &TensorStore,
    device: &Device,
) -> Result<ForwardResult> {
    let mut call = Call {
        module: name,
        config,
        weights,
        inputs,
        device,
        used_inputs: BTreeSet::new(),
        used_weights: BTreeSet::new(),
        warnings: Vec::new(),
    };
    let outputs = match name {
        "sdpa" => sdpa::run(&mut call)?,
        "mha" => mha::run(&mut call)?,
        "external" => external::run(&mut call)?,
        "aaren" => aaren::run(&mut call)?,
        "lstm" => recurrent::run(&mut call, crate::recurrent::RecurrentKind::Lstm)?,
        "gru" => recurrent::run(&mut call, crate::recurrent::RecurrentKind::Gru)?,
        "rnn" => recurrent::run(&mut call, crate::recurrent::RecurrentKind::Rnn)?,
        _ => {
            return Err(AttnError::UnknownModule {
                name: name.to_string(),
                known: MODULES.join(", "),
            });
        }
    };
    call.report_unused();
    Ok(ForwardResult {
        outputs,
        warnings: call.warnings,
    })
}

/// A module's config as the contract defines it (the `--config` JSON object).
///
/// The ONNX exporter reads the same structs, so `forward` and `export` accept exactly
/// the same configs.
pub trait ModuleConfig: DeserializeOwned {
    /// The keys this module reads.
    const KEYS: &'static [&'static str];

    /// Checks values serde cannot (finite numbers, non-zero sizes, sizes within the
    /// limit of one tensor).
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] naming the value and the rule it breaks.
    fn check(&self, _module: &str) -> Result<()> {
        Ok(())
    }

    /// Parses `config` for `module`; every key outside [`Self::KEYS`] adds a warning,
    /// since a misspelt key would otherwise silently change nothing.
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] for a missing key, a value of the wrong type, or one that
    /// [`ModuleConfig::check`] refuses.
    fn parse(module: &str, config: &Value, warnings: &mut Vec<String>) -> Result<Self> {
        if let Some(obj) = config.as_object() {
            for key in obj.keys() {
                if !Self::KEYS.contains(&key.as_str()) {
                    warnings.push(format!(
                        "config key `{key}` is not used by `{module}` (it reads: {})",
                        Self::KEYS.join(", ")
                    ));
                }
            }
        }
        let parsed: Self = serde_json::from_value(config.clone()).map_err(|e| {
            AttnError::Config(format!("`{module}`: {}", strip_position(&e.to_string())))
        })?;
        parsed.check(module)?;
        Ok(parsed)
    }
}

/// One contract call in progress: it records which inputs and weights the module read.
pub(crate) struct Call<'a> {
    module: &'a str,
    config: &'a Value,
    weights: Option<&'a TensorStore>,
    inputs: &'a TensorStore,
    pub(crate) device: &'a Device,
    used_inputs: BTreeSet<String>,
    used_weights: BTreeSet<String>,
    warnings: Vec<String>,
}

impl<'a> Call<'a> {
    /// Parses the config as `T`, collecting warnings about unknown keys.
    pub(crate) fn config<T: ModuleConfig>(&mut self) -> Result<T> {
        T::parse(self.module, self.config, &mut self.warnings)
    }

    /// A required input of rank `D` checked against `expected`.
    pub(crate) fn input<const D: usize>(
        &mut self,
        name: &str,
        expected: [Option<usize>; D],
        dims: [&str; D],
    ) -> Result<Tensor<D>> {
        self.used_inputs.insert(name.to_string());
        self.inputs.tensor(name, expected, dims, self.device)
    }

    /// An optional input.
    pub(crate) fn optional_input<const D: usize>(
        &mut self,
        name: &str,
        expected: [Option<usize>; D],
        dims: [&str; D],
    ) -> Result<Option<Tensor<D>>> {
        self.used_inputs.insert(name.to_string());
        self.inputs
            .optional_tensor(name, expected, dims, self.device)
    }

    /// The weights file, which this module requires.
    pub(crate) fn weights(&mut self, names: &[&str]) -> Result<&'a TensorStore> {
        self.used_weights
            .extend(names.iter().map(|n| n.to_string()));
        self.weights.ok_or_else(|| {
            AttnError::Config(format!(
                "`{}` needs a weights file with: {}",
                self.module,
                names.join(", ")
            ))
        })
    }

    fn report_unused(&mut self) {
        let unused: Vec<&str> = self
            .inputs
            .names()
            .filter(|n| !self.used_inputs.contains(*n))
            .collect();
        if !unused.is_empty() {
            self.warnings.push(format!(
                "inputs not used by `{}`: {}",
                self.module,
                unused.join(", ")
            ));
        }
        if let Some(w) = self.weights {
            let unused: Vec<&str> = w
                .names()
                .filter(|n| !self.used_weights.contains(*n))
                .collect();
            if !unused.is_empty() {
                self.warnings.push(format!(
                    "weights not used by `{}`: {}",
                    self.module,
                    unused.join(", ")
                ));
            }
        }
    }
}

/// serde_json appends " at line L column C", which the error already carries.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_json_names_line_and_column() {
        let err =
            parse_config("{\n  \"embed_dim\": 8,\n  \"num_heads\" 2\n}", "cfg.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cfg.json: invalid JSON at line 3, column 15: expected `:`"
        );
    }

    #[test]
    fn non_object_config_is_refused() {
        let err = parse_config("[1, 2]", "inline config").unwrap_err();
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
    }

    /// Runs `module` with a JSON `config` on `inputs` (no weights) and returns its error.
    fn refusal(module: &str, config: &str, inputs: &TensorStore) -> String {
        let config = parse_config(config, "inline config").unwrap();
        forward(module, &config, None, inputs, &Device::flex())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn absurd_sizes_are_refused_before_anything_is_allocated() {
        let none = TensorStore::new("in");
        assert_eq!(
            refusal("mha", r#"{"embed_dim": 4000000000, "num_heads": 4}"#, &none),
            "config: in_proj_weight [3·embed_dim, embed_dim] with embed_dim = 4000000000: \
             shape [12000000000, 4000000000]: expected at most 2147483648 (2^31) elements, \
             got more than 2^64"
        );
        // A trillion tiny layers: refused before a weight name is listed for each.
        let err = refusal(
            "lstm",
            r#"{"input_size": 1, "hidden_size": 1, "num_layers": 1000000000000}"#,
            &none,
        );
        assert!(
            err.starts_with("config: the parameters of 1000000000000 layers"),
            "{err}"
        );
        let err = refusal(
            "external",
            r#"{"d_model": 4294967296, "memory": 4294967296}"#,
            &none,
        );
        assert!(err.contains("got more than 2^64"), "{err}");
        // Empty inputs whose attention weights [1, 1, 2^16, 2^16] would be 2^32 floats.
        let mut inputs = TensorStore::new("in");
        for name in ["query", "key", "value"] {
            inputs.insert(name, vec![1, 1, 1 << 16, 0], vec![]).unwrap();
        }
        assert_eq!(
            refusal("sdpa", "{}", &inputs),
            "`sdpa` attention weights [B, H, Lq, Lk]: shape [1, 1, 65536, 65536]: expected \
             at most 2147483648 (2^31) elements, got 4294967296"
        );
    }

    #[test]
    fn unknown_module_lists_the_known_ones() {
        let err = forward(
            "transformer",
            &Value::Object(Default::default()),
            None,
            &TensorStore::new("in"),
            &Device::flex(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown module `transformer`; expected one of: sdpa, mha, external, aaren, lstm, gru, rnn"
        );
    }
}
