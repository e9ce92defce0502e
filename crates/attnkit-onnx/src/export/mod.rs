//! Exporters for the modules of the contract: the same config JSON and
//! weights file as `attnkit forward`, the same input and output names, batch and
//! sequence lengths dynamic.

mod aaren;
mod attention;
mod checkpoint;
mod enhance;
mod layers;
mod recurrent;

use std::collections::BTreeSet;

use attnkit::contract::{
    AarenContract, ExternalContract, MhaContract, ModuleConfig, RecurrentContract, SdpaContract,
};
use attnkit::store::{StoredTensor, TensorStore};
use serde_json::Value;

use crate::builder::{Dim, GraphBuilder, ModelBuilder};
use crate::error::{OnnxError, Result};
use crate::proto::ModelProto;

pub use aaren::{STEP_INPUTS, STEP_OUTPUTS};
pub use checkpoint::{EXPORTABLE_TASKS, export_checkpoint};
pub use enhance::{enhancer_state_names, export_enhancer_step};

/// The modules `export` knows, in the order the help lists them.
pub const EXPORTABLE: &[&str] = &["sdpa", "mha", "external", "aaren", "lstm", "gru", "rnn"];

/// Whether an exported attention graph has a `key_padding_mask` input.
///
/// The mask is a plain required input (not an input backed by a default initializer,
/// which onnxruntime hides from `get_inputs()` and tract treats as a constant): callers
/// with no padding feed zeros, or export with [`MaskInput::Absent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskInput {
    /// A required input `[B, Lk]` (`[B, L]` for `aaren`): 1 = ignore this key, 0 = keep.
    #[default]
    Required,
    /// No mask input: nothing is masked.
    Absent,
}

/// What to export beyond the module's config.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The mask input of `sdpa`, `mha` and `aaren` (whole-sequence form). Default
    /// [`MaskInput::Required`].
    pub mask: MaskInput,
    /// For `aaren`: export one step of the recurrence (state in, state out) instead of
    /// the whole sequence. Default false.
    pub aaren_step: bool,
    /// For `aaren` in `parallel` mode: the longest sequence the unrolled scan covers
    /// exactly (rounded up to a power of two). Longer sequences give NaN from that
    /// position on rather than a silently wrong value. Default 65,536.
    pub max_len: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            mask: MaskInput::Required,
            aaren_step: false,
            max_len: 65_536,
        }
    }
}

/// An exported model and the warnings collected on the way (unknown config keys,
/// unused weights).
#[derive(Debug)]
pub struct Exported {
    /// The model.
    pub model: ModelProto,
    /// Things the caller passed that the export did not use.
    pub warnings: Vec<String>,
}

/// Exports module `name` with `config` and `weights` (the module contract) as an ONNX model.
///
/// ```
/// use attnkit_onnx::{ExportOptions, export_module};
///
/// let config = serde_json::json!({"causal": true});
/// let exported = export_module("sdpa", &config, None, &ExportOptions::default()).unwrap();
/// let graph = exported.model.graph.unwrap();
/// let inputs: Vec<_> = graph.input.iter().map(|i| i.name.as_str()).collect();
/// assert_eq!(inputs, ["query", "key", "value", "key_padding_mask"]);
/// ```
///
/// # Errors
///
/// [`OnnxError::Attn`] for an unknown module, a refused config or a weight that is missing
/// or misshapen (as `attnkit forward` refuses them); [`OnnxError::Unsupported`] for an
/// option the module does not have.
pub fn export_module(
    name: &str,
    config: &Value,
    weights: Option<&TensorStore>,
    options: &ExportOptions,
) -> Result<Exported> {
    let mut ctx = Context {
        module: name.to_string(),
        weights,
        used: BTreeSet::new(),
        warnings: Vec::new(),
        options: options.clone(),
    };
    if options.aaren_step && name != "aaren" {
        return Err(ctx.unsupported("the one-step streaming form exists only for `aaren`"));
    }
    let graph = match name {
        "sdpa" => {
            let cfg = SdpaContract::parse(name, config, &mut ctx.warnings)?;
            if let Some(w) = weights
                && !w.is_empty()
            {
                ctx.warnings.push(format!(
                    "`sdpa` has no weights; ignoring the {} tensors of {}",
                    w.len(),
                    w.source()
                ));
            }
            ctx.weights = None;
            attention::sdpa(&mut ctx, &cfg)?
        }
        "mha" => {
            let cfg = MhaContract::parse(name, config, &mut ctx.warnings)?;
            attention::mha(&mut ctx, &cfg)?
        }
        "external" => {
            let cfg = ExternalContract::parse(name, config, &mut ctx.warnings)?;
            ctx.warn_if_no_mask_asked();
            attention::external(&mut ctx, &cfg)?
        }
        "aaren" => {
            let cfg = AarenContract::parse(name, config, &mut ctx.warnings)?;
            aaren::aaren(&mut ctx, &cfg)?
        }
        "lstm" | "gru" | "rnn" => {
            let cfg = RecurrentContract::parse(name, config, &mut ctx.warnings)?;
            ctx.warn_if_no_mask_asked();
            recurrent::recurrent(&mut ctx, &cfg)?
        }
        _ => {
            return Err(attnkit::AttnError::UnknownModule {
                name: name.to_string(),
                known: EXPORTABLE.join(", "),
            }
            .into());
        }
    };
    ctx.report_unused();
    let mut model = ModelBuilder::new(graph.build())
        .doc(format!("attnkit `{name}` (module contract)"))
        .metadata("attnkit.module", name)
        .metadata("attnkit.config", config.to_string());
    if name == "aaren" {
        model = model.metadata(
            "attnkit.aaren_form",
            if options.aaren_step {
                "step"
            } else {
                "sequence"
            },
        );
    }
    Ok(Exported {
        model: model.build(),
        warnings: ctx.warnings,
    })
}

/// One export in progress: the weights read so far and the warnings.
pub(crate) struct Context<'a> {
    pub(crate) module: String,
    pub(crate) weights: Option<&'a TensorStore>,
    pub(crate) used: BTreeSet<String>,
    pub(crate) warnings: Vec<String>,
    pub(crate) options: ExportOptions,
}

impl<'a> Context<'a> {
    pub(crate) fn unsupported(&self, why: &str) -> OnnxError {
        OnnxError::Unsupported {
            module: self.module.clone(),
            why: why.to_string(),
        }
    }

    /// For a graph that never has a mask input: leaving it out changes nothing, and
    /// the caller is told so.
    pub(crate) fn warn_if_no_mask_asked(&mut self) {
        if self.options.mask == MaskInput::Absent {
            self.warnings.push(format!(
                "`{}` has no `key_padding_mask` input to leave out",
                self.module
            ));
        }
    }

    fn store(&self, names: &[&str]) -> Result<&'a TensorStore> {
        self.weights.ok_or_else(|| {
            attnkit::AttnError::Config(format!(
                "`{}` needs a weights file with: {}",
                self.module,
                names.join(", ")
            ))
            .into()
        })
    }

    /// The weight `name`, checked against `expected`.
    pub(crate) fn weight(
        &mut self,
        name: &str,
        expected: &[Option<usize>],
        dims: &[&str],
    ) -> Result<&'a StoredTensor> {
        let store = self.store(&[name])?;
        self.used.insert(name.to_string());
        Ok(store.checked(name, expected, dims)?)
    }

    /// Like [`Context::weight`] for a weight that may be absent (`bias=False`).
    pub(crate) fn optional_weight(
        &mut self,
        name: &str,
        expected: &[Option<usize>],
        dims: &[&str],
    ) -> Result<Option<&'a StoredTensor>> {
        let store = self.store(&[name])?;
        match store.get(name) {
            None => Ok(None),
            Some(_) => self.weight(name, expected, dims).map(Some),
        }
    }

    /// The `key_padding_mask` input (dims `[batch, len]`) as booleans, per the options.
    pub(crate) fn mask_input(
        &self,
        g: &mut GraphBuilder,
        batch: &str,
        len: &str,
    ) -> Option<String> {
        let dims = [Dim::named(batch), Dim::named(len)];
        let mask = match self.options.mask {
            MaskInput::Absent => return None,
            MaskInput::Required => g.input("key_padding_mask", &dims),
        };
        Some(g.mask_to_bool(&mask))
    }

    pub(crate) fn report_unused(&mut self) {
        if let Some(w) = self.weights {
            let unused: Vec<&str> = w.names().filter(|n| !self.used.contains(*n)).collect();
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

/// Rows `[start, start + n)` of a `[rows, cols]` matrix, or elements of a vector.
pub(crate) fn rows(t: &StoredTensor, start: usize, n: usize) -> StoredTensor {
    let cols: usize = t.shape[1..].iter().product();
    let mut shape = t.shape.clone();
    shape[0] = n;
    StoredTensor {
        shape,
        data: t.data[start * cols..(start + n) * cols].to_vec(),
    }
}

/// E / heads, or an error naming both.
pub(crate) fn head_dim(module: &str, embed_dim: usize, num_heads: usize) -> Result<usize> {
    if num_heads == 0 || embed_dim == 0 || embed_dim % num_heads != 0 {
        return Err(attnkit::AttnError::Config(format!(
            "`{module}`: embed_dim ({embed_dim}) must be a positive multiple of num_heads ({num_heads})"
        ))
        .into());
    }
    Ok(embed_dim / num_heads)
}
