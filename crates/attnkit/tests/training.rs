//! The training loop and the tasks on it: exact resume, refused checkpoints, early
//! stopping, schedules, learning curves.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use attnkit::tasks::counting::{CountConfig, CountTraining, Mixer};
use attnkit::tasks::pe_regression::{PeRegressionConfig, PeRegressionTraining};
use attnkit::train::{Every, LogRow, Metrics, Progress, TrainPlan, Trainer, TrainingTask};
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

/// A plan of `steps` steps, logging every 10 and saving every 10 at `path`.
fn plan(steps: u64, path: Option<PathBuf>) -> TrainPlan {
    TrainPlan {
        steps,
        log: Every::Steps(10),
        checkpoint: Every::Steps(10),
        checkpoint_path: path,
        stop_at: None,
    }
}

fn resume_count(config: CountConfig, path: &Path) -> attnkit::Result<Trainer<CountTraining>> {
    let task = CountTraining::new(config, &Device::flex())?;
    Trainer::resume(task, plan(30, Some(path.to_path_buf())), path)
}

/// 30 steps straight and 15 steps + checkpoint + resume + 15 steps give bit-identical
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
        let task = CountTraining::new(config.clone(), &device).unwrap();
        let mut straight = Trainer::new(task, plan(30, None)).unwrap();
        straight.run(&mut ()).unwrap();

        let path = dir.join(format!("{mixer:?}.ckpt"));
        let task = CountTraining::new(config.clone(), &device).unwrap();
        let mut partial = Trainer::new(task, plan(15, Some(path.clone()))).unwrap();
        partial.run(&mut ()).unwrap();
        drop(partial);
        // Step 15 is mid-window (logs every 10): the window's sums are restored too.
        let mut resumed = resume_count(config, &path).unwrap();
        assert_eq!(resumed.step(), 15);
        resumed.run(&mut ()).unwrap();

        assert_eq!(straight.history(), resumed.history(), "{mixer:?}");
        assert_eq!(straight.history().len(), 3);
        assert_eq!(
            straight.task().test_accuracy(1000).unwrap(),
            resumed.task().test_accuracy(1000).unwrap()
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
    let path = dir.join("count.ckpt");
    let task = CountTraining::new(config.clone(), &device).unwrap();
    let mut run = Trainer::new(task, plan(1, Some(path.clone()))).unwrap();
    run.run(&mut ()).unwrap();
    let good = std::fs::read(&path).unwrap();

    // A flipped payload byte.
    let mut flipped = good.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let err = resume_count(config.clone(), &path).unwrap_err().to_string();
    assert!(
        err.contains("count.ckpt") && err.contains("checksum"),
        "{err}"
    );

    // Truncated (an interrupted copy).
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let err = resume_count(config.clone(), &path).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");

    // Not a checkpoint at all.
    std::fs::write(&path, b"hello").unwrap();
    let err = resume_count(config.clone(), &path).unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");

    // A checkpoint of other options.
    std::fs::write(&path, &good).unwrap();
    let other = CountConfig {
        mixer: Mixer::Aaren,
        ..config
    };
    let err = resume_count(other, &path).unwrap_err().to_string();
    assert!(err.contains("differs from this run"), "{err}");

    // Missing.
    let err = resume_count(CountConfig::default(), &dir.join("none.ckpt"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("none.ckpt"), "{err}");

    // A checkpoint written outside the loop (an exportable network) has no loop state:
    // resuming it is refused rather than starting from an empty history.
    let bare = dir.join("bare.ckpt");
    CountTraining::new(config.clone(), &device)
        .unwrap()
        .save_checkpoint(&bare)
        .unwrap();
    let err = resume_count(config.clone(), &bare).unwrap_err().to_string();
    assert!(
        err.contains("bare.ckpt") && err.contains("extra.loop"),
        "{err}"
    );

    // A loop state with a field of the wrong type (the checksum only covers the
    // payload, so the header must be checked on its own).
    let header_end = good
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0;
    let header = std::str::from_utf8(&good[..header_end]).unwrap();
    let tampered = header.replacen("\"steps\":1", "\"steps\":\"one\"", 1);
    assert_ne!(tampered, header, "the window's step count is in the header");
    let mut bytes = tampered.into_bytes();
    bytes.extend_from_slice(&good[header_end..]);
    std::fs::write(&path, &bytes).unwrap();
    let err = resume_count(config, &path).unwrap_err().to_string();
    assert!(
        err.contains("count.ckpt") && err.contains("training-loop state"),
        "{err}"
    );
}

/// Records what the loop reports.
#[derive(Default)]
struct Recorder {
    started: Option<(u64, u64)>,
    steps: Vec<u64>,
    logs: Vec<LogRow>,
}

impl Progress for Recorder {
    fn on_start(&mut self, done: u64, total: u64) {
        self.started = Some((done, total));
    }
    fn on_step(&mut self, step: u64, metrics: &Metrics) {
        assert_eq!(metrics[0].0, "loss");
        self.steps.push(step);
    }
    fn on_log(&mut self, row: &LogRow) {
        self.logs.push(row.clone());
    }
}

/// The loop stops at the first log that reaches the stopping metric, reports every step
/// and log, and its rows carry the window means and the validation metrics.
#[test]
fn early_stopping_and_reports() {
    let _turn = exclusive();
    let task = CountTraining::new(CountConfig::default(), &Device::flex()).unwrap();
    // Any accuracy is ≥ 0, so the first log stops the run.
    let mut trainer = Trainer::new(
        task,
        TrainPlan {
            stop_at: Some(("val_accuracy".into(), 0.0)),
            ..plan(100, None)
        },
    )
    .unwrap();
    let mut rec = Recorder::default();
    trainer.run(&mut rec).unwrap();
    assert!(trainer.stopped_early());
    assert_eq!(trainer.step(), 10);
    assert_eq!(rec.started, Some((0, 100)));
    assert_eq!(rec.steps, (1..=10).collect::<Vec<_>>());
    assert_eq!(rec.logs, trainer.history());
    let names: Vec<&str> = rec.logs[0].values.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["train_loss", "train_accuracy", "val_accuracy"]);
    assert_eq!(rec.logs[0].epoch, None);
    let summary = trainer.summary();
    assert_eq!(summary["steps"], 10);
    assert_eq!(summary["final_val_accuracy"], rec.logs[0].values[2].1);
    // A threshold no accuracy reaches runs to the end.
    let task = CountTraining::new(CountConfig::default(), &Device::flex()).unwrap();
    let mut trainer = Trainer::new(
        task,
        TrainPlan {
            stop_at: Some(("val_accuracy".into(), 1.5)),
            ..plan(20, None)
        },
    )
    .unwrap();
    trainer.run(&mut ()).unwrap();
    assert!(!trainer.stopped_early());
    assert_eq!(trainer.history().len(), 2);
}

/// Plans that do not fit the task are refused before any step.
#[test]
fn plans_that_do_not_fit_the_task_are_refused() {
    let _turn = exclusive();
    let count = || CountTraining::new(CountConfig::default(), &Device::flex()).unwrap();
    let err = Trainer::new(
        count(),
        TrainPlan {
            log: Every::Epoch,
            ..plan(10, None)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no epochs"), "{err}");
    let err = Trainer::new(
        count(),
        TrainPlan {
            log: Every::Steps(0),
            ..plan(10, None)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at least 1"), "{err}");
    let err = Trainer::start(count(), plan(10, None), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no checkpoint path"), "{err}");
    // An epoch task saves at epoch ends only.
    let pe = PeRegressionTraining::new(
        PeRegressionConfig {
            samples: 100,
            ..PeRegressionConfig::default()
        },
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(pe.steps_per_epoch(), Some(3)); // 80 rows, batch 32
    let err = Trainer::new(
        pe,
        TrainPlan {
            log: Every::Epoch,
            checkpoint: Every::Steps(2),
            ..plan(6, None)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("epoch ends only"), "{err}");
    let pe = || {
        PeRegressionTraining::new(
            PeRegressionConfig {
                samples: 100,
                ..PeRegressionConfig::default()
            },
            &Device::flex(),
        )
        .unwrap()
    };
    // Its last save would fall inside an epoch (7 steps of 3 per epoch).
    let saving = Some(PathBuf::from("pe.ckpt"));
    let err = Trainer::new(
        pe(),
        TrainPlan {
            steps: 7,
            ..TrainPlan::by_epochs(2, 3, saving.clone()).unwrap()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("a run of 7 steps"), "{err}");
    // An early stop checked inside an epoch would save there too.
    let err = Trainer::new(
        pe(),
        TrainPlan {
            log: Every::Steps(2),
            stop_at: Some(("val_loss".into(), 0.0)),
            ..TrainPlan::by_epochs(2, 3, saving.clone()).unwrap()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("log interval of 2 steps"), "{err}");
    // Without checkpoints any length is fine.
    assert!(
        Trainer::new(
            pe(),
            TrainPlan {
                steps: 7,
                ..TrainPlan::by_epochs(2, 3, None).unwrap()
            }
        )
        .is_ok()
    );
    let err = TrainPlan::by_epochs(u64::MAX, 3, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("64 bits"), "{err}");
}

/// An epoch task resumed at an epoch end continues bit-identically, and its rows count
/// epochs.
#[test]
fn epoch_tasks_resume_exactly() {
    let _turn = exclusive();
    let dir_tmp = scratch("epochs");
    let path = dir_tmp.path().join("pe.ckpt");
    let config = PeRegressionConfig {
        samples: 100,
        ..PeRegressionConfig::default()
    };
    let epochs = |n: u64, path: Option<PathBuf>| TrainPlan::by_epochs(n, 3, path).unwrap();
    let task = PeRegressionTraining::new(config.clone(), &Device::flex()).unwrap();
    let mut straight = Trainer::new(task, epochs(4, None)).unwrap();
    straight.run(&mut ()).unwrap();
    let task = PeRegressionTraining::new(config.clone(), &Device::flex()).unwrap();
    Trainer::new(task, epochs(2, Some(path.clone())))
        .unwrap()
        .run(&mut ())
        .unwrap();
    let task = PeRegressionTraining::new(config, &Device::flex()).unwrap();
    let mut resumed = Trainer::resume(task, epochs(4, Some(path.clone())), &path).unwrap();
    resumed.run(&mut ()).unwrap();
    assert_eq!(straight.history(), resumed.history());
    let epochs_logged: Vec<Option<u64>> = straight.history().iter().map(|r| r.epoch).collect();
    assert_eq!(epochs_logged, [Some(1), Some(2), Some(3), Some(4)]);
    assert_eq!(
        straight.task().validation_loss().unwrap(),
        resumed.task().validation_loss().unwrap()
    );
}

#[test]
fn pe_regression_learns_and_needs_positions() {
    let _turn = exclusive();
    let device = Device::flex();
    let fit = |positional: bool| {
        let run = PeRegressionTraining::new(
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
        let per_epoch = run.steps_per_epoch().unwrap();
        let mut trainer =
            Trainer::new(run, TrainPlan::by_epochs(30, per_epoch, None).unwrap()).unwrap();
        trainer.run(&mut ()).unwrap();
        (initial, trainer.last("val_loss").unwrap())
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
