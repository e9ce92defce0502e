//! The element-wise check of computed outputs against expected ones, and its reports.
//!
//! An output passes where |got − want| ≤ atol + rtol·|want| for every element; a
//! non-finite value passes only where it equals the expected one. A report names every
//! failing tensor with its worst element (index, got, want, tolerance), so one run
//! shows all that is wrong.

use std::fmt;

use crate::store::{StoredTensor, TensorStore};

/// Element-wise tolerance: |got − want| ≤ atol + rtol·|want|.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Absolute part.
    pub atol: f64,
    /// Part relative to |want|.
    pub rtol: f64,
}

impl Tolerance {
    /// A tolerance of `atol` + `rtol`·|want|.
    pub const fn new(atol: f64, rtol: f64) -> Self {
        Self { atol, rtol }
    }

    /// The largest |got − want| allowed where the expected value is `want`.
    pub fn bound(&self, want: f64) -> f64 {
        self.atol + self.rtol * want.abs()
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "atol {:e} + rtol {:e}·|want|", self.atol, self.rtol)
    }
}

/// The element of a tensor farthest outside (or least inside) its tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct WorstElement {
    /// Its index, one entry per axis.
    pub index: Vec<usize>,
    /// The value computed.
    pub got: f32,
    /// The value expected.
    pub want: f32,
    /// |got − want|.
    pub error: f64,
    /// The tolerance at `want`: atol + rtol·|want|.
    pub bound: f64,
    /// `error / bound` (∞ for a non-finite value that differs from the expected one);
    /// ≤ 1 passes.
    pub ratio: f64,
}

/// One output compared with its expected tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorCheck {
    /// The output's name.
    pub name: String,
    /// The tolerance it was checked with.
    pub tolerance: Tolerance,
    /// Why no element could be compared (the output is missing, or its shape differs).
    pub problem: Option<String>,
    /// Values compared.
    pub count: usize,
    /// Values outside the tolerance.
    pub outside: usize,
    /// The worst element (`None` if nothing was compared).
    pub worst: Option<WorstElement>,
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            index[i] = flat % d;
            flat /= d;
        }
    }
    index
}

impl TensorCheck {
    /// Compares `got` with `want` element-wise.
    pub fn compare(
        name: &str,
        got: &StoredTensor,
        want: &StoredTensor,
        tolerance: Tolerance,
    ) -> Self {
        let mut check = Self {
            name: name.to_string(),
            tolerance,
            problem: None,
            count: 0,
            outside: 0,
            worst: None,
        };
        if got.shape != want.shape {
            check.problem = Some(format!(
                "expected shape {:?}, got {:?}",
                want.shape, got.shape
            ));
            return check;
        }
        let mut worst: Option<(usize, f64)> = None;
        for (i, (&g, &w)) in got.data.iter().zip(&want.data).enumerate() {
            let ratio = Self::ratio(g, w, tolerance);
            if ratio > 1.0 {
                check.outside += 1;
            }
            if worst.is_none_or(|(_, r)| ratio > r) {
                worst = Some((i, ratio));
            }
        }
        check.count = want.data.len();
        check.worst = worst.map(|(i, ratio)| {
            let (g, w) = (got.data[i], want.data[i]);
            WorstElement {
                index: unravel(i, &want.shape),
                got: g,
                want: w,
                error: (g as f64 - w as f64).abs(),
                bound: tolerance.bound(w as f64),
                ratio,
            }
        });
        check
    }

    /// |got − want| / (atol + rtol·|want|), ∞ where a non-finite value differs.
    fn ratio(got: f32, want: f32, tolerance: Tolerance) -> f64 {
        let (g, w) = (got as f64, want as f64);
        if g == w {
            return 0.0;
        }
        let error = (g - w).abs();
        if error.is_finite() {
            error / tolerance.bound(w)
        } else {
            f64::INFINITY
        }
    }

    /// Whether every element is within the tolerance.
    pub fn passed(&self) -> bool {
        self.problem.is_none() && self.outside == 0
    }

    /// The worst error as a multiple of the tolerance (∞ if nothing could be compared).
    pub fn worst_ratio(&self) -> f64 {
        if self.problem.is_some() {
            return f64::INFINITY;
        }
        self.worst.as_ref().map_or(0.0, |w| w.ratio)
    }
}

impl fmt::Display for TensorCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: ", self.name)?;
        if let Some(problem) = &self.problem {
            return write!(f, "{problem}");
        }
        let Some(w) = &self.worst else {
            return write!(f, "no values");
        };
        if self.passed() {
            write!(
                f,
                "worst error {:.1}% of the tolerance at {:?} ({} values)",
                w.ratio * 100.0,
                w.index,
                self.count
            )
        } else {
            write!(
                f,
                "{} of {} values outside {}; worst at {:?}: got {}, want {}, |err| {:.3e} > {:.3e}",
                self.outside, self.count, self.tolerance, w.index, w.got, w.want, w.error, w.bound
            )
        }
    }
}

/// The first item with the largest `key`.
fn first_max<'a, T>(items: impl Iterator<Item = &'a T>, key: impl Fn(&T) -> f64) -> Option<&'a T> {
    let mut best: Option<(&T, f64)> = None;
    for item in items {
        let k = key(item);
        if best.is_none_or(|(_, b)| k > b) {
            best = Some((item, k));
        }
    }
    best.map(|(item, _)| item)
}

/// One case's outputs checked, or why they could not be.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseReport {
    /// The case's name.
    pub case: String,
    /// One entry per expected output.
    pub tensors: Vec<TensorCheck>,
    /// Why the case did not run (the module returned an error), if it did not.
    pub error: Option<String>,
}

impl CaseReport {
    /// Checks every tensor of `want` against the tensor of the same name in `got`.
    /// Outputs of `got` that `want` does not have are not checked.
    pub fn compare(
        case: &str,
        got: &TensorStore,
        want: &TensorStore,
        tolerance: Tolerance,
    ) -> Self {
        let tensors = want
            .names()
            .map(|name| {
                let w = want.get(name).expect("a name the store listed");
                match got.get(name) {
                    Some(g) => TensorCheck::compare(name, g, w, tolerance),
                    None => TensorCheck {
                        name: name.to_string(),
                        tolerance,
                        problem: Some(format!(
                            "missing from the outputs (they have: {})",
                            got.names().collect::<Vec<_>>().join(", ")
                        )),
                        count: 0,
                        outside: 0,
                        worst: None,
                    },
                }
            })
            .collect();
        Self {
            case: case.to_string(),
            tensors,
            error: None,
        }
    }

    /// A case whose module could not run: `error` says why.
    pub fn not_run(case: &str, error: impl fmt::Display) -> Self {
        Self {
            case: case.to_string(),
            tensors: Vec::new(),
            error: Some(error.to_string()),
        }
    }

    /// Whether the case ran, compared at least one output, and every output passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && !self.tensors.is_empty() && self.tensors.iter().all(|t| t.passed())
    }

    /// The outputs outside their tolerance.
    pub fn failures(&self) -> impl Iterator<Item = &TensorCheck> {
        self.tensors.iter().filter(|t| !t.passed())
    }

    /// The output with the worst error relative to its tolerance (the first of equals).
    pub fn worst(&self) -> Option<&TensorCheck> {
        first_max(self.tensors.iter(), TensorCheck::worst_ratio)
    }

    /// The worst error as a multiple of the tolerance (∞ if the case did not run or
    /// compared nothing).
    pub fn worst_ratio(&self) -> f64 {
        if self.error.is_some() {
            return f64::INFINITY;
        }
        self.worst().map_or(f64::INFINITY, TensorCheck::worst_ratio)
    }
}

impl fmt::Display for CaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.case)?;
        if let Some(e) = &self.error {
            return write!(f, "did not run: {e}");
        }
        if self.tensors.is_empty() {
            return write!(f, "no expected outputs to compare");
        }
        if self.passed() {
            if let Some(w) = self.worst() {
                write!(f, "{w}")?;
            }
            return Ok(());
        }
        let failures: Vec<String> = self.failures().map(|t| t.to_string()).collect();
        write!(f, "{}", failures.join("; "))
    }
}

/// The reports of many cases: what the tour prints and the fixture tests assert.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FixtureSummary {
    /// One report per case, in the order added.
    pub cases: Vec<CaseReport>,
}

impl FixtureSummary {
    /// An empty summary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a case's report.
    pub fn push(&mut self, report: CaseReport) {
        self.cases.push(report);
    }

    /// Whether at least one case was checked and every case passed.
    pub fn passed(&self) -> bool {
        !self.cases.is_empty() && self.cases.iter().all(CaseReport::passed)
    }

    /// The cases that failed or did not run.
    pub fn failures(&self) -> impl Iterator<Item = &CaseReport> {
        self.cases.iter().filter(|c| !c.passed())
    }

    /// The case whose error is largest relative to its tolerance, among those that ran
    /// (the first of equals).
    pub fn worst(&self) -> Option<&CaseReport> {
        first_max(
            self.cases
                .iter()
                .filter(|c| c.error.is_none() && !c.tensors.is_empty()),
            CaseReport::worst_ratio,
        )
    }
}

impl fmt::Display for FixtureSummary {
    /// One line: the count, the worst case, and every failure in full.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cases", self.cases.len())?;
        if let Some(worst) = self.worst() {
            let tensor = worst.worst().map_or("", |t| t.name.as_str());
            write!(
                f,
                ", worst error {:.1}% of its tolerance ({} `{tensor}`)",
                worst.worst_ratio() * 100.0,
                worst.case
            )?;
        }
        let failures: Vec<String> = self.failures().map(|c| c.to_string()).collect();
        if !failures.is_empty() {
            write!(f, "; {} failed: {}", failures.len(), failures.join(" | "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> TensorStore {
        let mut s = TensorStore::new("test");
        for (name, shape, data) in tensors {
            s.insert(*name, shape.clone(), data.clone()).unwrap();
        }
        s
    }

    const TOL: Tolerance = Tolerance::new(1e-5, 1e-4);

    #[test]
    fn every_failing_tensor_is_reported_with_its_worst_element() {
        let want = store(&[
            ("a", vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
            ("b", vec![2], vec![1.0, 1.0]),
            ("c", vec![1], vec![7.0]),
        ]);
        let got = store(&[
            // [1, 1] is off by 1e-2 (bound 4e-4+1e-5), [0, 2] by 1e-3.
            ("a", vec![2, 3], vec![0.0, 1.0, 2.001, 3.0, 4.01, 5.0]),
            ("b", vec![2], vec![1.0, f32::NAN]),
            ("c", vec![1], vec![7.0]),
        ]);
        let r = CaseReport::compare("case", &got, &want, TOL);
        assert!(!r.passed());
        let failures: Vec<&TensorCheck> = r.failures().collect();
        assert_eq!(failures.len(), 2);
        let a = failures[0].worst.as_ref().unwrap();
        assert_eq!((failures[0].outside, a.index.clone()), (2, vec![1, 1]));
        assert_eq!((a.got, a.want), (4.01, 4.0));
        assert!((a.bound - (1e-5 + 4e-4)).abs() < 1e-12);
        assert_eq!(failures[1].worst.as_ref().unwrap().index, vec![1]);
        assert_eq!(failures[1].worst_ratio(), f64::INFINITY);
        let text = r.to_string();
        assert!(
            text.starts_with("case: `a`: 2 of 6 values outside atol 1e-5 + rtol 1e-4·|want|; worst at [1, 1]: got 4.01, want 4"),
            "{text}"
        );
        assert!(text.contains("; `b`: 1 of 2 values outside"), "{text}");
    }

    #[test]
    fn missing_outputs_shapes_and_errors_fail() {
        let want = store(&[("out", vec![2], vec![1.0, 2.0]), ("w", vec![1], vec![1.0])]);
        let got = store(&[("out", vec![1, 2], vec![1.0, 2.0])]);
        let r = CaseReport::compare("c", &got, &want, TOL);
        assert_eq!(
            r.to_string(),
            "c: `out`: expected shape [2], got [1, 2]; `w`: missing from the outputs (they have: out)"
        );
        let mut summary = FixtureSummary::new();
        summary.push(CaseReport::compare("ok", &want, &want, TOL));
        assert!(summary.passed());
        summary.push(r);
        summary.push(CaseReport::not_run("broken", "config: bad"));
        assert!(!summary.passed());
        let line = summary.to_string();
        assert!(
            line.starts_with(
                "3 cases, worst error inf% of its tolerance (c `out`); 2 failed: c: `out`"
            ),
            "{line}"
        );
        assert!(
            line.ends_with(" | broken: did not run: config: bad"),
            "{line}"
        );
        assert!(!FixtureSummary::new().passed());
        assert!(!CaseReport::compare("empty", &got, &TensorStore::new("none"), TOL).passed());
    }

    #[test]
    fn equal_infinities_pass_and_the_bound_is_inclusive() {
        let want = store(&[("x", vec![3], vec![f32::INFINITY, 0.0, 100.0])]);
        let got = store(&[("x", vec![3], vec![f32::INFINITY, 1e-5, 100.0])]);
        let r = CaseReport::compare("c", &got, &want, Tolerance::new(1e-5, 0.0));
        assert!(r.passed(), "{r}");
    }
}
