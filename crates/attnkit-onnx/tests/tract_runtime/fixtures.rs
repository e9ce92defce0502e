//! The committed PyTorch/numpy fixtures through the exported files.

use crate::runner::*;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/attention")
}

/// The committed PyTorch/numpy fixtures of every exportable module, through tract.
#[test]
fn committed_fixtures_match_their_oracle() {
    let mut summary = FixtureSummary::new();
    for case in Fixture::load_all(&fixtures_dir()).unwrap_or_else(|e| panic!("{e}")) {
        let module = case.module.as_str();
        if !attnkit_onnx::EXPORTABLE.contains(&module) {
            continue;
        }
        let (weights, inputs) = (case.weights.as_ref(), &case.inputs);
        let mask = if inputs.get("key_padding_mask").is_some() {
            MaskInput::Required
        } else {
            MaskInput::Absent
        };
        let options = ExportOptions {
            mask,
            ..Default::default()
        };
        let options = if matches!(module, "external" | "lstm" | "gru" | "rnn") {
            ExportOptions::default()
        } else {
            options
        };
        let exported = export_module(module, &case.config, weights, &options).unwrap();
        let got = if module == "lstm" {
            run_tract_per_sequence(&exported.model, inputs)
        } else {
            run_tract(&exported.model, inputs)
        };
        summary.push(case.check(&got));
    }
    // sdpa ×5, mha ×4, external ×2, aaren ×5, lstm ×2, gru ×2, rnn ×1.
    assert_eq!(summary.cases.len(), 21, "{summary}");
    assert!(summary.passed(), "{summary}");
}
