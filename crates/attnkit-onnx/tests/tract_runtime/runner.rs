//! Running exported files in tract, and the inputs, weights and comparisons the tests
//! share. The crates the tests use are re-exported so each test file names one import.

#![allow(unused_imports)]

pub use std::path::{Path, PathBuf};

pub use attnkit::contract;
pub use attnkit::store::{StoredTensor, TensorStore};
pub use attnkit::verify::{CaseReport, Fixture, FixtureSummary, TensorCheck, Tolerance};
pub use attnkit_kernels::rng::SplitMix64;
pub use attnkit_onnx::proto::ModelProto;
pub use attnkit_onnx::{ExportOptions, MaskInput, STEP_INPUTS, STEP_OUTPUTS, export_module};
pub use burn::prelude::Device;
pub use prost::Message;
pub use serde_json::{Value, json};
pub use tract_onnx::prelude::*;

/// Runs `model` in tract with `inputs` fed by graph input name; every graph input
/// must be in `inputs` (a mask included: feed zeros for no padding).
pub fn run_tract(model: &ModelProto, inputs: &TensorStore) -> TensorStore {
    let bytes = model.encode_to_vec();
    let mut m = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .unwrap();
    let names: Vec<String> = m
        .input_outlets()
        .unwrap()
        .iter()
        .map(|o| m.node(o.node).name.clone())
        .collect();
    let mut feeds = TVec::new();
    for (i, name) in names.iter().enumerate() {
        let t = inputs
            .get(name)
            .unwrap_or_else(|| panic!("no input `{name}`"));
        m = m
            .with_input_fact(i, f32::fact(t.shape.clone()).into())
            .unwrap();
        feeds.push(
            tract_onnx::prelude::Tensor::from_shape(&t.shape, &t.data)
                .unwrap()
                .into_tvalue(),
        );
    }
    let runnable = m.into_optimized().unwrap().into_runnable().unwrap();
    let outs = runnable
        .run(feeds)
        .unwrap_or_else(|e| panic!("tract: {e:?}"));
    let graph = model.graph.as_ref().unwrap();
    let mut store = TensorStore::new("tract");
    for (info, value) in graph.output.iter().zip(outs.iter()) {
        let data: Vec<f32> = value
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect();
        store
            .insert(&info.name, value.shape().to_vec(), data)
            .unwrap();
    }
    store
}

/// Runs a model whose inputs are int64 tensors (token ids, lengths) in tract and
/// returns its first output.
pub fn run_tract_i64(model: &ModelProto, inputs: &[(Vec<usize>, &[i64])]) -> StoredTensor {
    let bytes = model.encode_to_vec();
    let mut m = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .unwrap();
    let mut feeds = TVec::new();
    for (i, (shape, data)) in inputs.iter().enumerate() {
        m = m
            .with_input_fact(i, i64::fact(shape.clone()).into())
            .unwrap();
        feeds.push(
            tract_onnx::prelude::Tensor::from_shape(shape, data)
                .unwrap()
                .into_tvalue(),
        );
    }
    let runnable = m.into_optimized().unwrap().into_runnable().unwrap();
    let out = runnable
        .run(feeds)
        .unwrap_or_else(|e| panic!("tract: {e:?}"));
    let got: Vec<f32> = out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect();
    StoredTensor::new(out[0].shape().to_vec(), got).unwrap()
}

/// Row `b` of a batch-first tensor, keeping the batch axis (size 1).
pub fn batch_row(t: &StoredTensor, b: usize) -> StoredTensor {
    let row: usize = t.shape[1..].iter().product();
    let mut shape = t.shape.clone();
    shape[0] = 1;
    StoredTensor::new(shape, t.data[b * row..(b + 1) * row].to_vec()).unwrap()
}

/// Runs an LSTM file one sequence at a time (see `lstm_gru_rnn_uni_and_bidirectional`
/// for the tract issue) and stitches the batch back: `output` is batch-first, `h_n` and
/// `c_n` have the batch on axis 1.
pub fn run_tract_per_sequence(model: &ModelProto, inputs: &TensorStore) -> TensorStore {
    let x = inputs.get("x").unwrap();
    let runs: Vec<TensorStore> = (0..x.shape[0])
        .map(|b| run_tract(model, &store("row", vec![("x", batch_row(x, b))])))
        .collect();
    let mut out = TensorStore::new("tract per sequence");
    for name in runs[0].names() {
        let first = runs[0].get(name).unwrap();
        let axis = if name == "output" { 0 } else { 1 };
        let outer: usize = first.shape[..axis].iter().product();
        let inner: usize = first.shape[axis + 1..].iter().product();
        let mut data = Vec::new();
        for o in 0..outer {
            for r in &runs {
                data.extend_from_slice(&r.get(name).unwrap().data[o * inner..(o + 1) * inner]);
            }
        }
        let mut shape = first.shape.clone();
        shape[axis] = runs.len();
        out.insert(name, shape, data).unwrap();
    }
    out
}

/// Every value name is assigned once in the whole model, subgraphs included (ONNX's
/// single static assignment rule, which onnx.checker enforces).
pub fn assert_single_assignment(model: &ModelProto, what: &str) {
    fn walk(
        g: &attnkit_onnx::proto::GraphProto,
        seen: &mut std::collections::BTreeSet<String>,
        what: &str,
    ) {
        let assigned = g
            .input
            .iter()
            .map(|v| &v.name)
            .chain(g.initializer.iter().map(|t| &t.name))
            .chain(g.node.iter().flat_map(|n| n.output.iter()));
        // An input that is also an initializer counts twice: runtimes hide it or treat
        // it as a constant.
        for name in assigned {
            if !seen.insert(name.clone()) {
                panic!("{what}: `{name}` is assigned twice");
            }
        }
        for n in &g.node {
            for a in &n.attribute {
                if let Some(body) = &a.g {
                    walk(body, seen, what);
                }
            }
        }
    }
    walk(model.graph.as_ref().unwrap(), &mut Default::default(), what);
}

/// Every output of `want` is in `got` within atol + rtol·|want| element-wise; a failure
/// names every output outside it, with its worst element.
pub fn assert_close(what: &str, got: &TensorStore, want: &TensorStore, atol: f64, rtol: f64) {
    let report = CaseReport::compare(what, got, want, Tolerance::new(atol, rtol));
    assert!(report.passed(), "{report}");
}

pub fn random(rng: &mut SplitMix64, shape: &[usize], scale: f32) -> StoredTensor {
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| (rng.next_f64() as f32 * 2.0 - 1.0) * scale)
        .collect();
    StoredTensor::new(shape.to_vec(), data).unwrap()
}

pub fn put(s: &mut TensorStore, name: &str, t: StoredTensor) {
    s.insert(name, t.shape, t.data).unwrap();
}

pub fn store(name: &str, tensors: Vec<(&str, StoredTensor)>) -> TensorStore {
    let mut s = TensorStore::new(name);
    for (n, t) in tensors {
        put(&mut s, n, t);
    }
    s
}

/// A 0/1 padding mask `[B, L]` ignoring the last `pad[b]` positions of row b.
pub fn padding_mask(len: usize, pad: &[usize]) -> StoredTensor {
    let mut data = Vec::new();
    for &p in pad {
        data.extend((0..len).map(|i| if i >= len - p { 1.0 } else { 0.0 }));
    }
    StoredTensor::new(vec![pad.len(), len], data).unwrap()
}

pub fn burn_forward(
    module: &str,
    config: &Value,
    weights: Option<&TensorStore>,
    inputs: &TensorStore,
) -> TensorStore {
    contract::forward(module, config, weights, inputs, &Device::flex())
        .unwrap()
        .outputs
}

pub fn without_mask() -> ExportOptions {
    ExportOptions {
        mask: MaskInput::Absent,
        ..Default::default()
    }
}

/// All zeros: `key_padding_mask` `[B, L]` that masks nothing.
pub fn zero_mask(batch: usize, len: usize) -> StoredTensor {
    StoredTensor::new(vec![batch, len], vec![0.0; batch * len]).unwrap()
}

/// Exports, runs in tract and compares with Burn, for each set of inputs (different
/// batch and sequence lengths through the one exported file).
pub fn check_against_burn(
    module: &str,
    config: Value,
    weights: Option<&TensorStore>,
    options: &ExportOptions,
    input_sets: &[TensorStore],
    atol: f64,
    rtol: f64,
) {
    let exported = export_module(module, &config, weights, options).unwrap();
    assert!(exported.warnings.is_empty(), "{:?}", exported.warnings);
    assert_single_assignment(&exported.model, module);
    for inputs in input_sets {
        let got = run_tract(&exported.model, inputs);
        let want = burn_forward(module, &config, weights, inputs);
        assert_close(
            &format!("{module} {}", inputs.source()),
            &got,
            &want,
            atol,
            rtol,
        );
    }
}
