//! Deno for the peers benchmark, from the npm registry at the version `package.json` pins.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::procs::version;

/// Deno from the npm registry, at the version `benches/peers/package.json` pins, installed
/// (`npm ci`, the lockfile beside it) into `work` unless that version is already there.
pub fn install_deno(peers: &Path, work: &Path) -> Result<PathBuf, String> {
    let manifest = std::fs::read_to_string(peers.join("package.json")).map_err(|e| e.to_string())?;
    let manifest: serde_json::Value = serde_json::from_str(&manifest).map_err(|e| e.to_string())?;
    let pinned = manifest["dependencies"]["deno"]
        .as_str()
        .ok_or("package.json pins no deno")?;
    let deno = work.join("node_modules/@deno/linux-x64-glibc/deno");
    if version(&deno, &["--version"]).starts_with(&format!("deno {pinned} ")) {
        return Ok(deno);
    }
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err("the Deno package used here is for Linux on x86-64 only".into());
    }
    std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(peers.join(file), work.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    eprintln!("installing deno {pinned} from the npm registry into {}", work.display());
    // The package's install script only finds the platform package's binary and links it as the
    // `deno` command; the benchmark runs that binary directly, so the script is not needed.
    let status = Command::new("timeout")
        .args(["300", "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(work)
        .status()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    match status.success() && deno.exists() {
        true => Ok(deno),
        false => Err(format!("npm ci failed in {} ({status})", work.display())),
    }
}
