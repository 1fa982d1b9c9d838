//! eddy's server run inside the benchmark's process, through `server::run` as `eddy serve`
//! runs it, on 127.0.0.1:0.

use eddy::config::Config;
use eddy::server::{self, Listeners, ServerError, Setup, Stopped};
use eddy::services::Services;
use eddy::store::SharedStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running in-process server.
pub struct InProcess {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The server's store, for benchmarks that read it while it serves; let go at `stop`,
    /// so the server can seal it.
    pub store: SharedStore,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Stopped, ServerError>>,
}

/// Starts a server with `config`, returning once it is built (its handlers may still load).
pub async fn start(config: Config) -> InProcess {
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", api.local_addr().expect("addr"));
    let (store_tx, store_rx) = oneshot::channel();
    let setup = Setup {
        config,
        on_start: Some(Box::new(move |services: &std::sync::Arc<Services>| {
            let _ = store_tx.send(services.store.clone());
        })),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(server::run(setup, Listeners { api, proxy: None }, shutdown));
    let store = store_rx.await.expect("the server starts");
    InProcess { url, store, stop, task }
}

/// Starts a server over `folder/handlers` (written by the caller) and `folder/data`, the fake
/// APIs on 127.0.0.1 allowed and `extra` added to its config, once `handlers` handlers loaded.
pub async fn start_project(folder: &std::path::Path, extra: &str, handlers: usize) -> InProcess {
    let text = format!(
        "handlers = {:?}\ndata = {:?}\n[net]\nallow_private = [\"127.0.0.1/32\"]\n{extra}",
        folder.join("handlers").display().to_string(),
        folder.join("data").display().to_string(),
    );
    let config = Config::parse(&text, &folder.join("eddy.toml")).expect("config");
    let server = start(config).await;
    super::eddy::wait_for_handlers(&server.url, handlers)
        .await
        .expect("handlers load");
    server
}

impl InProcess {
    /// Stops the server and waits until it has.
    pub async fn stop(self) {
        drop(self.store);
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
