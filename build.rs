//! Builds the startup snapshot: evaluates `runtime-js/` (and the deno_web pieces it uses)
//! once, at build time, with the same extensions the isolates run with. Also emits the
//! sources of deno_web scripts the snapshot left out (loaded on first use), so the binary
//! needs nothing from the build machine at run time.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use deno_core::ExtensionFileSourceCode;
use deno_core::snapshot::{CreateSnapshotOptions, create_snapshot};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let made = create_snapshot(
        CreateSnapshotOptions {
            cargo_manifest_dir: env!("CARGO_MANIFEST_DIR"),
            startup_snapshot: None,
            skip_op_registration: false,
            extensions: eddy_runtime_js::extensions(),
            extension_transpiler: None,
            with_runtime_cb: None,
        },
        None,
    )
    .expect("runtime-js must evaluate into the startup snapshot");
    std::fs::write(out.join("EDDY_SNAPSHOT.bin"), &made.output).expect("write the snapshot");
    for file in &made.files_loaded_during_snapshot {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    println!("cargo:rerun-if-changed=runtime-js");

    let consumed: HashSet<&str> = made.consumed_lazy_specifiers.iter().map(String::as_str).collect();
    let mut residual = Vec::new();
    for extension in eddy_runtime_js::extensions() {
        for file in extension.lazy_loaded_js_files.iter() {
            #[allow(deprecated, reason = "matching the variant deno_core records sources with")]
            let ExtensionFileSourceCode::LoadedFromFsDuringSnapshot(path) = &file.code else {
                continue;
            };
            if consumed.contains(file.specifier) {
                continue;
            }
            let source = std::fs::read_to_string(path).expect("read a lazily loaded script");
            // deno_core reads this table as ASCII without checking.
            assert!(source.is_ascii(), "{path} is not ASCII");
            residual.push((file.specifier, *path));
        }
    }
    // deno_core looks entries up by binary search.
    residual.sort();
    let mut table = String::from("&[\n");
    for (specifier, path) in residual {
        writeln!(table, "    ({specifier:?}, include_str!({path:?})),").expect("write to a String");
    }
    table.push(']');
    std::fs::write(out.join("eddy_residual_lazy_js.rs"), table).expect("write the residual table");
}
