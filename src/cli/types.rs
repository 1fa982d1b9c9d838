//! `eddy types [DIR]`: writes `eddy.d.ts`, the types of the handler API, into a project (and a
//! `jsconfig.json` that points editors at it, unless the project has one).

use std::path::PathBuf;

use anyhow::Context;

use super::Failure;
use super::init::{JSCONFIG, TYPES, write_new};

#[derive(Debug, clap::Args)]
pub struct TypesArgs {
    /// The project's folder [default: .]
    dir: Option<PathBuf>,
}

pub fn types(args: TypesArgs) -> Result<(), Failure> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    if !dir.is_dir() {
        return Err(anyhow::anyhow!("{} is not a folder", dir.display()).into());
    }
    let path = dir.join("eddy.d.ts");
    let said = match std::fs::read_to_string(&path) {
        Ok(old) if old == TYPES => "unchanged",
        Ok(_) => "updated",
        Err(_) => "created",
    };
    // eddy's own file: written whole each time, so it follows the eddy that wrote it.
    std::fs::write(&path, TYPES).with_context(|| format!("cannot write {}", path.display()))?;
    say!("  {said:<8} eddy.d.ts");
    let jsconfig = dir.join("jsconfig.json");
    if jsconfig.exists() {
        say!("  kept     jsconfig.json (already there)");
    } else {
        write_new(&jsconfig, JSCONFIG)?;
        say!("  created  jsconfig.json");
    }
    Ok(())
}
