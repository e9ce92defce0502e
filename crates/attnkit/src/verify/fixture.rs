//! Fixture cases written by the PyTorch/numpy generators under `tools/fixtures/`.
//!
//! A case is one folder in the layout of `attnkit forward`:
//!
//! ```text
//! <case>/case.json              module, config, generator versions, tolerance, note
//! <case>/config.json            the module's config (the --config argument)
//! <case>/weights.safetensors    parameters under PyTorch's names (absent if none)
//! <case>/input.safetensors      the inputs
//! <case>/expected.safetensors   the outputs the oracle computed
//! ```
//!
//! [`Fixture::check`] compares outputs with the expected ones (see [`super::check`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::check::{CaseReport, Tolerance};
use crate::error::{AttnError, FormatError, Result};
use crate::store::TensorStore;

/// The case description.
pub const CASE_FILE: &str = "case.json";
/// The module's config, as passed to `attnkit forward --config`.
pub const CONFIG_FILE: &str = "config.json";
/// The parameters, if the module has any.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// The inputs.
pub const INPUT_FILE: &str = "input.safetensors";
/// The expected outputs.
pub const EXPECTED_FILE: &str = "expected.safetensors";

/// One fixture case, read from its folder.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The folder's name, e.g. `mha_padding`.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// The module the case is for (a contract module name, or e.g. `luong`).
    pub module: String,
    /// The module's config.
    pub config: Value,
    /// The tolerance the generator states for the case.
    pub tolerance: Tolerance,
    /// What computed the expected outputs, with versions (e.g. `torch 2.15.0 / numpy 2.4.6`).
    pub generator: String,
    /// What the case stresses, if the generator says.
    pub note: String,
    /// The parameters, if the case has a weights file.
    pub weights: Option<TensorStore>,
    /// The inputs.
    pub inputs: TensorStore,
    /// The expected outputs.
    pub expected: TensorStore,
}

fn malformed(path: &Path, why: impl Into<String>) -> AttnError {
    AttnError::File(FormatError::Format {
        path: path.to_path_buf(),
        why: why.into(),
    })
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        AttnError::File(FormatError::Io {
            path: path.to_path_buf(),
            source,
        })
    })?;
    crate::contract::parse_config(&text, &path.display().to_string())
}

impl Fixture {
    /// Reads the case in folder `dir`: `case.json`, `config.json` (which must equal the
    /// config in `case.json`), the optional weights and the inputs and expected outputs.
    ///
    /// # Errors
    ///
    /// Naming the file: [`AttnError::File`] if a required file cannot be read,
    /// [`AttnError::Json`] if a JSON file does not parse, [`AttnError::File`] if
    /// `case.json` lacks a field, `config.json` differs from it, or a safetensors file is
    /// invalid or holds no expected tensor.
    pub fn load(dir: &Path) -> Result<Self> {
        let case_path = dir.join(CASE_FILE);
        let case = read_json(&case_path)?;
        let string = |key: &str| -> Result<String> {
            case.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| malformed(&case_path, format!("expected a string `{key}`")))
        };
        let module = string("module")?;
        let generator = string("generator")?;
        let note = case
            .get("note")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let config = case
            .get("config")
            .filter(|c| c.is_object())
            .cloned()
            .ok_or_else(|| malformed(&case_path, "expected an object `config`"))?;
        let limit = |key: &str| -> Result<f64> {
            let v = case.get("tolerance").and_then(|t| t.get(key));
            v.and_then(Value::as_f64)
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    malformed(
                        &case_path,
                        format!(
                            "expected `tolerance.{key}` to be a number ≥ 0, got {}",
                            v.map_or("nothing".to_string(), Value::to_string)
                        ),
                    )
                })
        };
        let tolerance = Tolerance::new(limit("atol")?, limit("rtol")?);
        let config_path = dir.join(CONFIG_FILE);
        if read_json(&config_path)? != config {
            return Err(malformed(
                &config_path,
                format!("differs from `config` in {}", case_path.display()),
            ));
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        let weights = weights_path
            .exists()
            .then(|| TensorStore::load(&weights_path))
            .transpose()?;
        let inputs = TensorStore::load(&dir.join(INPUT_FILE))?;
        let expected_path = dir.join(EXPECTED_FILE);
        let expected = TensorStore::load(&expected_path)?;
        if expected.is_empty() {
            return Err(malformed(
                &expected_path,
                "holds no tensor: a case needs at least one expected output",
            ));
        }
        Ok(Self {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.display().to_string()),
            dir: dir.to_path_buf(),
            module,
            config,
            tolerance,
            generator,
            note,
            weights,
            inputs,
            expected,
        })
    }

    /// Reads every case under `root` (each sub-folder is one), sorted by name.
    ///
    /// # Errors
    ///
    /// [`AttnError::File`] if `root` cannot be listed, and any error of [`Fixture::load`]
    /// for a sub-folder that is not a complete case.
    pub fn load_all(root: &Path) -> Result<Vec<Self>> {
        let io = |source| {
            AttnError::File(FormatError::Io {
                path: root.to_path_buf(),
                source,
            })
        };
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(root).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
        dirs.sort();
        dirs.iter().map(|d| Self::load(d)).collect()
    }

    /// The config file, to pass as `attnkit forward --config`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The weights file, if the case has one.
    pub fn weights_path(&self) -> Option<PathBuf> {
        self.weights.as_ref().map(|_| self.dir.join(WEIGHTS_FILE))
    }

    /// The inputs file.
    pub fn input_path(&self) -> PathBuf {
        self.dir.join(INPUT_FILE)
    }

    /// Checks `got` against every expected output within the case's own tolerance.
    pub fn check(&self, got: &TensorStore) -> CaseReport {
        self.check_with(got, self.tolerance)
    }

    /// Checks `got` against every expected output within `tolerance`.
    pub fn check_with(&self, got: &TensorStore, tolerance: Tolerance) -> CaseReport {
        CaseReport::compare(&self.name, got, &self.expected, tolerance)
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

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let case = dir.path().join("case");
        std::fs::create_dir(&case).unwrap();
        let err = Fixture::load(&case).unwrap_err().to_string();
        assert!(err.contains("case.json"), "{err}");
        let write = |name: &str, text: &str| std::fs::write(case.join(name), text).unwrap();
        write(
            CASE_FILE,
            r#"{"module": "mha", "config": {"embed_dim": 8}, "generator": "g", "tolerance": {"atol": 1e-5}}"#,
        );
        let err = Fixture::load(&case).unwrap_err().to_string();
        assert!(
            err.contains("case.json: expected `tolerance.rtol` to be a number ≥ 0, got nothing"),
            "{err}"
        );
        write(
            CASE_FILE,
            r#"{"module": "mha", "config": {"embed_dim": 8}, "generator": "g", "tolerance": {"atol": 1e-5, "rtol": 1e-4}}"#,
        );
        write(CONFIG_FILE, r#"{"embed_dim": 16}"#);
        let err = Fixture::load(&case).unwrap_err().to_string();
        assert!(
            err.contains("config.json: differs from `config` in"),
            "{err}"
        );
        write(CONFIG_FILE, r#"{"embed_dim": 8}"#);
        write(INPUT_FILE, "not safetensors");
        let err = Fixture::load(&case).unwrap_err().to_string();
        assert!(
            err.contains("input.safetensors: not a valid safetensors file"),
            "{err}"
        );
        store(&[("x", vec![1], vec![1.0])])
            .save(&case.join(INPUT_FILE))
            .unwrap();
        TensorStore::new("empty")
            .save(&case.join(EXPECTED_FILE))
            .unwrap();
        let err = Fixture::load(&case).unwrap_err().to_string();
        assert!(
            err.contains("expected.safetensors: holds no tensor"),
            "{err}"
        );
        store(&[("y", vec![1], vec![2.0])])
            .save(&case.join(EXPECTED_FILE))
            .unwrap();
        let fixture = Fixture::load(&case).unwrap();
        assert_eq!(
            (fixture.name.as_str(), fixture.module.as_str()),
            ("case", "mha")
        );
        assert!(fixture.weights_path().is_none());
        assert!(fixture.check(&store(&[("y", vec![1], vec![2.0])])).passed());
        assert_eq!(Fixture::load_all(dir.path()).unwrap().len(), 1);
    }
}
