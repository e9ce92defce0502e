//! The training stack: exact resume, refused checkpoints, learning curves.

#![allow(clippy::unwrap_used)]

use attnkit::tasks::counting::{CountConfig, CountTraining, Mixer};
use attnkit::tasks::pe_regression::{PeRegressionConfig, PeRegressionTraining};
use burn::prelude::*;

/// Seeding a device seeds the generator every test in this process draws from (Burn's is
/// per device, not per thread), so the tests here, which run on parallel threads, take
/// turns: otherwise one test's draws land between another's seed and its parameters, and
/// two runs with the same seed differ.
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A scratch folder, removed when dropped.
fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("attnkit-training-{tag}-"))
        .tempdir()
        .unwrap()
}

fn run_steps(run: &mut CountTraining, to: u64) {
    while run.step() < to {
        run.train_step().unwrap();
        if run.step() % 10 == 0 {
            run.log().unwrap();
        }
    }
}

/// 30 steps straight and 20 steps + checkpoint + resume + 10 steps give bit-identical
/// histories and held-out accuracy, for both mixers.
#[test]
fn resumed_runs_equal_uninterrupted_runs() {
    let _turn = exclusive();
    let dir_tmp = scratch("resume");
    let dir = dir_tmp.path();
    for mixer in [Mixer::Attention, Mixer::Aaren] {
        let config = CountConfig {
            mixer,
            seed: 7,
            ..CountConfig::default()
        };
        let device = Device::flex();
        let mut straight = CountTraining::new(config.clone(), &device).unwrap();
        run_steps(&mut straight, 30);

        let path = dir.join(format!("{mixer:?}.ckpt"));
        let mut first = CountTraining::new(config.clone(), &device).unwrap();
        run_steps(&mut first, 20);
        first.save_checkpoint(&path).unwrap();
        drop(first);
        let mut resumed = CountTraining::resume(config, &path, &device).unwrap();
        assert_eq!(resumed.step(), 20);
        run_steps(&mut resumed, 30);

        assert_eq!(straight.history(), resumed.history(), "{mixer:?}");
        assert_eq!(
            straight.test_accuracy(1000).unwrap(),
            resumed.test_accuracy(1000).unwrap()
        );
    }
}

#[test]
fn bad_checkpoints_are_refused_with_the_file_name() {
    let _turn = exclusive();
    let dir_tmp = scratch("refuse");
    let dir = dir_tmp.path();
    let device = Device::flex();
    let config = CountConfig::default();
    let mut run = CountTraining::new(config.clone(), &device).unwrap();
    run.train_step().unwrap();
    let path = dir.join("count.ckpt");
    run.save_checkpoint(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    // A flipped payload byte.
    let mut flipped = good.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let err = CountTraining::resume(config.clone(), &path, &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("count.ckpt") && err.contains("checksum"),
        "{err}"
    );

    // Truncated (an interrupted copy).
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let err = CountTraining::resume(config.clone(), &path, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");

    // Not a checkpoint at all.
    std::fs::write(&path, b"hello").unwrap();
    let err = CountTraining::resume(config.clone(), &path, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1"), "{err}");

    // A checkpoint of other options.
    std::fs::write(&path, &good).unwrap();
    let other = CountConfig {
        mixer: Mixer::Aaren,
        ..config
    };
    let err = CountTraining::resume(other, &path, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("differs from this run"), "{err}");

    // Missing.
    let err = CountTraining::resume(CountConfig::default(), &dir.join("none.ckpt"), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("none.ckpt"), "{err}");
}

#[test]
fn pe_regression_learns_and_needs_positions() {
    let _turn = exclusive();
    let device = Device::flex();
    let fit = |positional: bool| {
        let mut run = PeRegressionTraining::new(
            PeRegressionConfig {
                samples: 2048,
                positional,
                optimizer: attnkit::train::OptimizerConfig::Adam { lr: 3e-3 },
                ..PeRegressionConfig::default()
            },
            &device,
        )
        .unwrap();
        assert_eq!(run.split_sizes(), (1638, 410));
        let initial = run.validation_loss().unwrap();
        for _ in 0..30 {
            run.epoch().unwrap();
        }
        (initial, run.history().last().unwrap().val_loss)
    };
    let (initial, with_pe) = fit(true);
    let (_, without_pe) = fit(false);
    assert!(with_pe < 0.2 * initial, "{initial} → {with_pe}");
    // Without positions every token is weighed alike; the best such predictor leaves
    // Σc_t² − 1/L of the target's variance (0.0273 for L = 10): no model can beat it on
    // average, and the model with positions must.
    let l = 10.0f64;
    let floor = (1..=10)
        .map(|t| (2.0 * t as f64 / (l * (l + 1.0))).powi(2))
        .sum::<f64>()
        - 1.0 / l;
    assert!(
        without_pe > 0.8 * floor,
        "no PE {without_pe} below the floor {floor}?"
    );
    assert!(with_pe < 0.6 * floor, "with PE {with_pe}, floor {floor}");
}

/// Every parameter of the counting network is trainable and moves in a step (a bias
/// built by mapping another tensor once silently lost its gradient).
#[test]
fn every_parameter_trains() {
    let _turn = exclusive();
    use burn::module::{Module, ModuleVisitor, Param};
    #[derive(Default)]
    struct Snapshot(Vec<(bool, Vec<f32>)>);
    impl ModuleVisitor for Snapshot {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let v = param.val();
            self.0.push((
                v.is_require_grad(),
                v.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
            ));
        }
    }
    for mixer in [Mixer::Attention, Mixer::Aaren] {
        let mut run = CountTraining::new(
            CountConfig {
                mixer,
                ..CountConfig::default()
            },
            &Device::flex(),
        )
        .unwrap();
        let mut before = Snapshot::default();
        run.model().visit(&mut before);
        run.train_step().unwrap();
        let mut after = Snapshot::default();
        run.model().visit(&mut after);
        assert!(before.0.len() >= 20);
        for (i, ((grad, b), (_, a))) in before.0.iter().zip(&after.0).enumerate() {
            assert!(grad, "{mixer:?}: parameter {i} is not trainable");
            assert_ne!(a, b, "{mixer:?}: parameter {i} did not move");
        }
    }
}
