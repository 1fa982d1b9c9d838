//! `eddy init [DIR]`: a new project with a working handler, ready for `eddy dev`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Failure;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Folder to create the project in (created if missing) [default: .]
    dir: Option<PathBuf>,
}

/// A file of the new project; `shared` files an existing project may already have are
/// kept as they are rather than refused.
struct Template {
    path: &'static str,
    text: &'static str,
    shared: bool,
}

/// The types of the handler API, for editors (`eddy types` writes them again).
pub const TYPES: &str = include_str!("init/eddy.d.ts");
/// Tells editors to check the handlers' JavaScript against [`TYPES`].
pub const JSCONFIG: &str = include_str!("init/jsconfig.json");

const TEMPLATES: [Template; 7] = [
    Template {
        path: "eddy.toml",
        text: include_str!("init/eddy.toml"),
        shared: false,
    },
    Template {
        path: "handlers/user.signup.js",
        text: include_str!("init/user.signup.js"),
        shared: false,
    },
    Template {
        path: ".env.example",
        text: include_str!("init/env.example"),
        shared: false,
    },
    Template {
        path: ".gitignore",
        text: include_str!("init/gitignore"),
        shared: true,
    },
    Template {
        path: "README.md",
        text: include_str!("init/README.md"),
        shared: true,
    },
    Template {
        path: "eddy.d.ts",
        text: TYPES,
        shared: true,
    },
    Template {
        path: "jsconfig.json",
        text: JSCONFIG,
        shared: true,
    },
];

pub fn init(args: InitArgs) -> Result<(), Failure> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let clashes: Vec<&str> = TEMPLATES
        .iter()
        .filter(|t| !t.shared && dir.join(t.path).exists())
        .map(|t| t.path)
        .collect();
    if !clashes.is_empty() {
        return Err(anyhow::anyhow!(
            "{} already has {}; eddy init does not overwrite files",
            dir.display(),
            clashes.join(", ")
        )
        .into());
    }
    std::fs::create_dir_all(dir.join("handlers")).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = project_name(&dir);
    for template in &TEMPLATES {
        let path = dir.join(template.path);
        if template.shared && path.exists() {
            say!("  kept     {} (already there)", template.path);
            continue;
        }
        write_new(&path, &template.text.replace("{name}", &name))?;
        say!("  created  {}", template.path);
    }
    let cd = if dir == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", dir.display())
    };
    say!("\nnext: {cd}eddy dev");
    say!("then: eddy send user.signup '{{\"name\":\"Ada\",\"email\":\"ada@example.com\"}}'");
    Ok(())
}

fn project_name(dir: &Path) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "eddy project".into())
}

/// Writes a file that must not exist yet (a file appearing meanwhile is not overwritten).
pub(super) fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_config_parses_and_the_names_are_filled_in() {
        let config = crate::config::Config::parse(TEMPLATES[0].text, Path::new("/p/eddy.toml")).unwrap();
        assert_eq!(config.handlers, PathBuf::from("/p/handlers"));
        assert_eq!(project_name(Path::new("/tmp/shop-sync")), "shop-sync");
    }

    #[test]
    fn refuses_to_overwrite_and_keeps_shared_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "mine").unwrap();
        init(InitArgs {
            dir: Some(dir.path().to_owned()),
        })
        .unwrap_or_else(|_| panic!("first init works"));
        assert_eq!(std::fs::read_to_string(dir.path().join("README.md")).unwrap(), "mine");
        assert!(dir.path().join("handlers/user.signup.js").is_file());
        let again = init(InitArgs {
            dir: Some(dir.path().to_owned()),
        });
        let Err(Failure::Usage(error)) = again else {
            panic!("a second init must fail")
        };
        assert!(
            error
                .to_string()
                .contains("eddy.toml, handlers/user.signup.js, .env.example"),
            "{error}"
        );
    }
}
