//! The startup snapshot: the global scope of `runtime-js/` (and the deno_web pieces it uses),
//! evaluated once per process and then copied into every new isolate.
//!
//! It is made at first use rather than in `build.rs` because the ops it binds live in this
//! crate, and a build script cannot link the crate it builds.

use std::sync::{Arc, OnceLock};

use deno_core::{Extension, JsRuntimeForSnapshot, RuntimeOptions};

use super::ops::eddy;

/// The extensions of every isolate, in load order; the snapshot and the isolates made from
/// it must agree on this list.
pub fn extensions() -> Vec<Extension> {
    vec![
        deno_webidl::deno_webidl::init(),
        deno_web::deno_web::init(
            Arc::new(deno_web::BlobStore::default()),
            None,
            false,
            deno_web::InMemoryBroadcastChannel::default(),
        ),
        eddy::init(),
    ]
}

/// The snapshot bytes; the first call makes them (tens of milliseconds), later calls are free.
pub fn startup_snapshot() -> &'static [u8] {
    static SNAPSHOT: OnceLock<&'static [u8]> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        // A JsRuntime needs a tokio context for V8's delayed tasks; a private thread keeps this
        // independent of whatever runtime the caller is on.
        let made = std::thread::spawn(|| {
            let tokio = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?;
            let _guard = tokio.enter();
            let runtime = JsRuntimeForSnapshot::try_new(RuntimeOptions {
                extensions: extensions(),
                ..Default::default()
            })
            .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(runtime.snapshot())
        })
        .join();
        match made {
            Ok(Ok(bytes)) => Box::leak(bytes),
            // The JS in runtime-js/ is part of the binary; if it does not evaluate, no
            // handler can run and there is nothing sensible to fall back to.
            Ok(Err(e)) => panic!("the built-in runtime-js failed to evaluate: {e}"),
            Err(_) => panic!("the built-in runtime-js failed to evaluate"),
        }
    })
}
