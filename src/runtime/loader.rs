//! Module loading for handlers: only `.js`/`.mjs` files inside the handlers folder, imported
//! by relative path. No `node:`, `npm:`, `ext:`, URLs, bare names or paths outside the folder;
//! symlinks are resolved before the check so they cannot lead outside either.

use std::path::{Path, PathBuf};

use deno_core::error::ModuleLoaderError;
use deno_core::{
    ModuleLoadOptions, ModuleLoadReferrer, ModuleLoadResponse, ModuleLoader, ModuleSource, ModuleSourceCode,
    ModuleSpecifier, ModuleType, ResolutionKind,
};
use deno_error::JsErrorBox;

/// Loads handler modules from one folder.
#[derive(Clone)]
pub struct HandlerLoader {
    /// Canonical handlers folder.
    root: PathBuf,
}

impl HandlerLoader {
    /// `root` must exist; it is canonicalised here.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    /// The file URL of a handler file, checked to lie inside the folder.
    pub fn main_specifier(&self, file: &Path) -> Result<ModuleSpecifier, ModuleLoaderError> {
        let path = file
            .canonicalize()
            .map_err(|e| JsErrorBox::generic(format!("cannot read {}: {e}", file.display())))?;
        self.check_inside(&path, &file.display().to_string())?;
        ModuleSpecifier::from_file_path(&path)
            .map_err(|_| JsErrorBox::generic(format!("{} is not an absolute path", path.display())))
    }

    fn check_inside(&self, path: &Path, shown: &str) -> Result<(), ModuleLoaderError> {
        if path.starts_with(&self.root) {
            Ok(())
        } else {
            Err(JsErrorBox::type_error(format!(
                "import of {shown:?} refused: it is outside the handlers folder"
            )))
        }
    }
}

impl ModuleLoader for HandlerLoader {
    fn resolve(
        &self,
        specifier: &str,
        referrer: &str,
        kind: ResolutionKind,
    ) -> Result<ModuleSpecifier, ModuleLoaderError> {
        let refuse = |why: &str| {
            Err(JsErrorBox::type_error(format!(
                "import of {specifier:?} refused: {why}"
            )))
        };
        if kind == ResolutionKind::MainModule {
            let url = ModuleSpecifier::parse(specifier).map_err(JsErrorBox::from_err)?;
            return if url.scheme() == "file" {
                Ok(url)
            } else {
                refuse("not a handler file")
            };
        }
        if !(specifier.starts_with("./") || specifier.starts_with("../")) {
            return refuse("handlers may only import files inside the handlers folder, by relative path (./ or ../)");
        }
        let base = ModuleSpecifier::parse(referrer).map_err(JsErrorBox::from_err)?;
        if base.scheme() != "file" {
            return refuse("only handler files may import");
        }
        let url = base.join(specifier).map_err(JsErrorBox::from_err)?;
        let path = url
            .to_file_path()
            .map_err(|_| JsErrorBox::type_error(format!("import of {specifier:?} refused: not a file path")))?;
        self.check_inside(&path, specifier)?;
        Ok(url)
    }

    fn load(
        &self,
        specifier: &ModuleSpecifier,
        _referrer: Option<&ModuleLoadReferrer>,
        options: ModuleLoadOptions,
    ) -> ModuleLoadResponse {
        ModuleLoadResponse::Sync(self.read(specifier, &options))
    }
}

impl HandlerLoader {
    fn read(
        &self,
        specifier: &ModuleSpecifier,
        options: &ModuleLoadOptions,
    ) -> Result<ModuleSource, ModuleLoaderError> {
        let shown = specifier.as_str();
        let path = specifier
            .to_file_path()
            .map_err(|_| JsErrorBox::type_error(format!("import of {shown:?} refused: not a file")))?;
        let real = path
            .canonicalize()
            .map_err(|e| JsErrorBox::generic(format!("cannot load {}: {e}", path.display())))?;
        self.check_inside(&real, shown)?;
        let is_js = matches!(real.extension().and_then(|e| e.to_str()), Some("js" | "mjs"));
        if !is_js || options.requested_module_type != deno_core::RequestedModuleType::None {
            return Err(JsErrorBox::type_error(format!(
                "import of {shown:?} refused: only JavaScript modules (.js, .mjs) can be imported"
            )));
        }
        let code = std::fs::read_to_string(&real)
            .map_err(|e| JsErrorBox::generic(format!("cannot load {}: {e}", path.display())))?;
        Ok(ModuleSource::new(
            ModuleType::JavaScript,
            ModuleSourceCode::String(code.into()),
            specifier,
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loader() -> (tempfile::TempDir, HandlerLoader, ModuleSpecifier) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("handlers");
        std::fs::create_dir_all(root.join("_lib")).unwrap();
        std::fs::write(root.join("a.js"), "").unwrap();
        std::fs::write(root.join("_lib/util.js"), "").unwrap();
        std::fs::write(dir.path().join("secret.js"), "").unwrap();
        let l = HandlerLoader::new(&root).unwrap();
        let main = l.main_specifier(&root.join("a.js")).unwrap();
        (dir, l, main)
    }

    #[test]
    fn relative_imports_inside_the_folder_resolve() {
        let (_d, l, main) = loader();
        let url = l
            .resolve("./_lib/util.js", main.as_str(), ResolutionKind::Import)
            .unwrap();
        assert!(url.as_str().ends_with("/handlers/_lib/util.js"));
    }

    #[test]
    fn everything_else_is_refused() {
        let (_d, l, main) = loader();
        for spec in [
            "node:fs",
            "npm:lodash",
            "https://example.com/x.js",
            "ext:core/mod.js",
            "data:text/javascript,export default 1",
            "/etc/passwd",
            "lodash",
            "../secret.js",
            "./../../../../etc/passwd",
        ] {
            let err = l.resolve(spec, main.as_str(), ResolutionKind::Import).unwrap_err();
            assert!(err.to_string().contains("refused"), "{spec}: {err}");
        }
    }
}
