//! `attnkit data prepare` with an explicit `--python`: used as given (no environment is
//! set up behind the user's back), and a missing interpreter or one without the
//! packages fails with one clear message before anything is written. The full run
//! (setting up `.venv-data` and downloading the data packages) needs the network and
//! minutes, so it is not part of the tests.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("attnkit-prepare-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn prepare(python: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attnkit"))
        .args(["data", "prepare", "--python"])
        .arg(python)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn a_missing_interpreter_is_named_and_nothing_is_written() {
    let scratch = Scratch::new("missing");
    let python = scratch.0.join("no-such-python3");
    let out = scratch.0.join("data");
    let r = prepare(&python, &out);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot run `{}`", python.display())),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("setup-data.sh"), "{stderr}");
    assert!(!out.exists());
}

/// `python3 -S` (no site-packages, so no pyarrow or numpy) behind a wrapper script: the
/// preparation script refuses before downloading or writing, says what is missing and
/// how to get it, and `data prepare` does not try to set up its own environment.
#[test]
fn an_interpreter_without_the_packages_is_refused_up_front() {
    let scratch = Scratch::new("bare");
    let python = scratch.0.join("bare-python");
    std::fs::write(&python, "#!/bin/sh\nexec python3 -S \"$@\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = scratch.0.join("data");
    let r = prepare(&python, &out);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        !stderr.contains("not found"),
        "this test needs python3 on PATH: {stderr}"
    );
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lacks pyarrow, numpy"), "{stderr}");
    assert!(stderr.contains("tools/requirements-data.txt"), "{stderr}");
    assert!(stderr.contains("tools/prepare_data.py failed"), "{stderr}");
    assert!(!stderr.contains("running tools/setup-data.sh"), "{stderr}");
    assert!(!out.exists(), "nothing may be written");
}
