//! `attnkit data prepare-speech`: speech-enhancement data from Debian packages.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::data::{tool_script, venv_python};

/// The packages and what they give (training speech and noise; held-out test voices and
/// noises): tools/prepare_speech.py says which files of each it takes.
const PACKAGES: [&str; 13] = [
    "asterisk-core-sounds-en-g722",
    "asterisk-core-sounds-es-g722",
    "asterisk-core-sounds-fr-g722",
    "asterisk-core-sounds-it-g722",
    "fillets-ng-data-cs",
    "fillets-ng-data",
    "openttd-opensfx",
    "asterisk-core-sounds-ru-g722",
    "asterisk-prompt-fr-armelle",
    "asterisk-prompt-es-co",
    "alienblaster-data",
    "lincity-ng-data",
    "extremetuxracer-data",
];

/// `attnkit data prepare-speech`.
#[derive(Args)]
pub struct PrepareSpeechArgs {
    /// Output folder (the speech, noise, valid/ and test/ folders; the packages are kept
    /// under DIR/debs so a second run downloads nothing).
    #[arg(long, default_value = "attnkit-data/speech")]
    out: PathBuf,
    /// Seed of the train/validation split and of the fixed pairs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Python interpreter for tools/prepare_speech.py, used as given (it needs `av` and
    /// numpy). Default: .venv-speech/bin/python, set up with tools/setup-speech.sh.
    #[arg(long)]
    python: Option<PathBuf>,
}

fn run_command(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}); see its message above");
    }
    Ok(())
}

/// Downloads (once) and unpacks every package into `debs/root`.
fn fetch_packages(debs: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(debs).with_context(|| format!("cannot create {}", debs.display()))?;
    let have = |pkg: &str| -> Result<Option<PathBuf>> {
        for entry in std::fs::read_dir(debs)? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with(&format!("{pkg}_")) && name.ends_with(".deb") {
                return Ok(Some(path));
            }
        }
        Ok(None)
    };
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| matches!(have(p), Ok(None)))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "downloading {} Debian packages into {} ...",
            missing.len(),
            debs.display()
        );
        run_command(
            Command::new("apt-get")
                .arg("download")
                .args(&missing)
                .current_dir(debs),
            "`apt-get download` (this needs Debian or Ubuntu with its package lists; elsewhere \
             put the .deb files of these packages into the debs/ folder yourself)",
        )?;
    }
    let root = debs.join("root");
    for pkg in PACKAGES {
        let deb = have(pkg)?
            .with_context(|| format!("{pkg}: no .deb in {} after downloading", debs.display()))?;
        let marker = root.join(".unpacked").join(pkg);
        if marker.exists() {
            continue;
        }
        run_command(
            Command::new("dpkg").arg("-x").arg(&deb).arg(&root),
            &format!("`dpkg -x {}`", deb.display()),
        )?;
        std::fs::create_dir_all(marker.parent().expect("has a parent"))?;
        std::fs::write(&marker, b"")?;
    }
    Ok(root)
}

pub fn run(args: PrepareSpeechArgs) -> Result<()> {
    let started = Instant::now();
    let root = fetch_packages(&args.out.join("debs"))?;
    let script = tool_script("prepare_speech.py")?;
    let python = match args.python {
        Some(p) => p,
        None => venv_python(
            &script,
            ".venv-speech",
            "setup-speech.sh",
            "about 150 MB: av, numpy, scipy, pesq, pystoi, pyrnnoise",
        )?,
    };
    let raw = args.out.join("raw");
    eprintln!("decoding the recordings into {} ...", raw.display());
    run_command(
        Command::new(&python)
            .arg(&script)
            .arg("--root")
            .arg(&root)
            .arg("--out")
            .arg(&raw),
        "tools/prepare_speech.py",
    )?;
    eprintln!("resampling to 16 kHz, splitting, mixing the validation and test pairs ...");
    attnkit_audio::corpus::prepare_layout(&raw, &args.out, args.seed, &mut |line| {
        eprintln!("  {line}")
    })?;
    let readme = format!(
        "Made by `attnkit data prepare-speech --out {} --seed {}` from these Debian packages:\n{}\n\
         Training and validation use speech/ and noise/ only; test-speech/, test-noise/ and\n\
         test/ are held-out voices, languages and noises. raw/ is the decoded recordings at\n\
         their own rates (tools/prepare_speech.py).\n",
        args.out.display(),
        args.seed,
        PACKAGES.join("\n")
    );
    let readme_path = args.out.join("README.attnkit");
    std::fs::write(&readme_path, readme)
        .with_context(|| format!("cannot write {}", readme_path.display()))?;
    eprintln!(
        "done in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
