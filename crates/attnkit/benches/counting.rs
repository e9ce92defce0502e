//! Training throughput of the counting task (B 64, L 7, E 64, H 4): one
//! optimizer step. `attnkit bench count-train` and `bench/count_train.sh` measure the
//! same against PyTorch.
//!
//! `cargo bench -p attnkit --bench counting` (threads: `RAYON_NUM_THREADS`).

#![allow(missing_docs)]

use attnkit::tasks::counting::{CountConfig, CountTraining};
use attnkit::train::TrainingTask;
use burn::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn counting(c: &mut Criterion) {
    let device = Device::flex();
    let mut run = CountTraining::new(CountConfig::default(), &device).expect("task");
    c.bench_function("count_train_step", |bench| {
        bench.iter(|| run.train_step().expect("step"))
    });
}

criterion_group!(benches, counting);
criterion_main!(benches);
