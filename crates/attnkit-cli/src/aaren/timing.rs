//! Medians of repeated timings.

use anyhow::Result;

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(super) fn time_median(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    use std::time::Instant;
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(median(times))
}
