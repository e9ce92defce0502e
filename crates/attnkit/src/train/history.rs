//! The metrics a run logs: one row per logging point, the running window of training
//! metrics between two points, and the CSV of the rows.

use serde::{Deserialize, Serialize};

use crate::train::Metrics;

/// The metrics at one logging point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    /// Optimizer steps taken.
    pub step: u64,
    /// Epochs completed (tasks with epochs only).
    pub epoch: Option<u64>,
    /// `train_…` (means over the steps since the previous row), then the validation
    /// metrics, in the task's order.
    #[serde(with = "named_values")]
    pub values: Vec<(String, f64)>,
}

impl LogRow {
    /// The value of metric `name`, if the row has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// Sums of the training metrics since the last logging point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Metric names and their sums.
    #[serde(with = "named_values")]
    pub sums: Vec<(String, f64)>,
    /// Steps summed.
    pub steps: u64,
}

impl Window {
    /// Adds one step's metrics.
    pub fn add(&mut self, metrics: &Metrics) {
        for (name, value) in metrics {
            match self.sums.iter_mut().find(|(n, _)| n == name) {
                Some((_, sum)) => *sum += value,
                None => self.sums.push(((*name).to_string(), *value)),
            }
        }
        self.steps += 1;
    }

    /// The means as `train_NAME`, and an empty window.
    pub fn take_means(&mut self) -> Vec<(String, f64)> {
        let n = self.steps.max(1) as f64;
        let means = self
            .sums
            .iter()
            .map(|(name, sum)| (format!("train_{name}"), sum / n))
            .collect();
        *self = Self::default();
        means
    }
}

/// The rows as CSV: `step` (and `epoch` when the rows have it), then each metric, values
/// written in full precision.
pub fn history_csv(rows: &[LogRow]) -> String {
    let with_epoch = rows.iter().any(|r| r.epoch.is_some());
    let mut csv = String::from("step");
    if with_epoch {
        csv.push_str(",epoch");
    }
    if let Some(first) = rows.first() {
        for (name, _) in &first.values {
            csv.push(',');
            csv.push_str(name);
        }
    }
    csv.push('\n');
    for row in rows {
        csv.push_str(&row.step.to_string());
        if with_epoch {
            csv.push(',');
            if let Some(e) = row.epoch {
                csv.push_str(&e.to_string());
            }
        }
        for (_, value) in &row.values {
            csv.push(',');
            csv.push_str(&value.to_string());
        }
        csv.push('\n');
    }
    csv
}

/// `(name, value)` pairs as a JSON list of `[name, value]`, keeping the order, with
/// non-finite values (a diverged loss) as the strings `NaN`, `inf`, `-inf`: JSON has no
/// number for them, and a checkpoint must restore them exactly.
mod named_values {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(pairs: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
        let list: Vec<(&str, Value)> = pairs
            .iter()
            .map(|(name, v)| {
                let value = if v.is_finite() {
                    Value::from(*v)
                } else {
                    Value::from(v.to_string())
                };
                (name.as_str(), value)
            })
            .collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64)>, D::Error> {
        let list: Vec<(String, Value)> = Vec::deserialize(d)?;
        list.into_iter()
            .map(|(name, value)| {
                let v = match &value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => match s.as_str() {
                        "NaN" => Some(f64::NAN),
                        "inf" => Some(f64::INFINITY),
                        "-inf" => Some(f64::NEG_INFINITY),
                        _ => None,
                    },
                    _ => None,
                };
                v.map(|v| (name.clone(), v)).ok_or_else(|| {
                    D::Error::custom(format!("metric `{name}`: expected a number, got {value}"))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_means_are_prefixed_and_reset() {
        let mut w = Window::default();
        w.add(&vec![("loss", 1.0), ("accuracy", 0.5)]);
        w.add(&vec![("loss", 3.0), ("accuracy", 1.0)]);
        assert_eq!(
            w.take_means(),
            vec![
                ("train_loss".to_string(), 2.0),
                ("train_accuracy".to_string(), 0.75)
            ]
        );
        assert_eq!(w, Window::default());
    }

    #[test]
    fn rows_round_trip_through_json_with_non_finite_values() {
        let row = LogRow {
            step: 7,
            epoch: Some(1),
            values: vec![
                ("train_loss".into(), f64::NAN),
                ("val_loss".into(), 0.1 + 0.2),
                ("x".into(), f64::NEG_INFINITY),
            ],
        };
        let back: LogRow = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert!(back.values[0].1.is_nan());
        assert_eq!(back.values[1], row.values[1]);
        assert_eq!(back.values[2], row.values[2]);
        let bad = r#"{"step":1,"epoch":null,"values":[["loss",null]]}"#;
        let err = serde_json::from_str::<LogRow>(bad).unwrap_err().to_string();
        assert!(err.contains("metric `loss`"), "{err}");
    }

    #[test]
    fn csv_has_one_column_per_metric() {
        let rows = [
            LogRow {
                step: 10,
                epoch: Some(1),
                values: vec![("train_loss".into(), 0.5), ("val_loss".into(), 0.25)],
            },
            LogRow {
                step: 20,
                epoch: Some(2),
                values: vec![("train_loss".into(), 0.125), ("val_loss".into(), 1e-7)],
            },
        ];
        assert_eq!(
            history_csv(&rows),
            "step,epoch,train_loss,val_loss\n10,1,0.5,0.25\n20,2,0.125,0.0000001\n"
        );
    }
}
