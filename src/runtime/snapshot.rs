//! The startup snapshot made by `build.rs`: the global scope of `runtime-js/` (and the
//! deno_web pieces it uses), copied into every new isolate.

/// The snapshot bytes (public for benchmarks and embedders that make isolates themselves).
pub static STARTUP_SNAPSHOT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/EDDY_SNAPSHOT.bin"));

/// Sources of the deno_web scripts the snapshot left out, loaded on first use (streams, see
/// `runtime-js/21_body.js`); sorted by specifier.
pub static LAZY_SOURCES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/eddy_residual_lazy_js.rs"));

/// The extensions of every isolate; the snapshot was made with the same list.
pub use eddy_runtime_js::extensions;
