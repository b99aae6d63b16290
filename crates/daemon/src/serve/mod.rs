//! What an operator looks at: one HTTP listener (`[http] listen`, default 127.0.0.1:9188) with
//! the Prometheus metrics (`/metrics`), the JSON API (`/api/v1/…`, described by
//! `/api/v1/openapi.json`) and the health checks (`/healthz`, `/readyz`).
//!
//! It reads what the rest of the daemon publishes — the [`StatusBoard`] snapshot, the bus's
//! counts — and asks the actions thread for rule changes through the same requests as the
//! control socket, so the guard rails are the plan's, not copies. It runs on its own thread
//! with a single-threaded tokio runtime: nothing it does can hold up detection or mitigation.

mod api;
pub mod auth;
pub mod metrics;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _, Result};
use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};

use crate::act::control::Call;
use crate::status::StatusBoard;

pub use api::openapi_document;

/// `[http]`: the API (`/api/v1`, described by `/api/v1/openapi.json`), the Prometheus metrics
/// (`/metrics`) and the health checks (`/healthz`, `/readyz`) on one listener.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Whether the daemon serves HTTP. Default: true.
    pub enabled: bool,
    /// Address and port of the listener. Default: 127.0.0.1:9188 (this host only: before
    /// opening it to a network, set `tokens_file`, and `tls_cert`/`tls_key` or a TLS proxy).
    /// Port 0 takes any free port (the log says which).
    pub listen: SocketAddr,
    /// API tokens, by SHA-256, one per line: `NAME read|write sha256:HEX` (`floodwall token`
    /// makes them). With it every call but `/healthz` and `/readyz` needs a token, and
    /// announcing or withdrawing a `write` one; the file is re-read when it changes. Default:
    /// none — reads are open to whoever reaches the listener (requests to an IP address or
    /// `localhost` only: no DNS rebinding) and nothing can be changed.
    pub tokens_file: Option<PathBuf>,
    /// PEM certificate chain: with `tls_key`, the listener speaks HTTPS only. Default: none.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`. Default: none.
    pub tls_key: Option<PathBuf>,
}

/// The port Floodwall serves on unless told otherwise.
pub const DEFAULT_PORT: u16 = 9188;

/// How `floodwall run` logs where it serves: `API and metrics on http://127.0.0.1:9188 (...)`.
/// The demo, the benchmarks and the tests find the address (port 0 picks one) in that line.
pub const LOG_LINE: &str = "API and metrics on ";

/// The address a daemon's log says it serves on, once it has said it.
pub fn url_in_log(log: &str) -> Option<&str> {
    let at = log.find(LOG_LINE)? + LOG_LINE.len();
    log[at..].split_whitespace().next()
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            tokens_file: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl HttpConfig {
    /// Certificate and key come together.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err("http.tls_cert is set without http.tls_key".into()),
            (None, Some(_)) => Err("http.tls_key is set without http.tls_cert".into()),
            _ => Ok(()),
        }
    }
}

/// What the HTTP side reads and whom it asks.
pub struct HttpContext {
    pub board: Arc<StatusBoard>,
    /// The actions thread's requests (list, announce, withdraw), as the control socket sends.
    pub calls: Sender<Call>,
    pub counters: Arc<metrics::Counters>,
    /// The history and its writer's counters, when `[history]` is on.
    pub history: Option<(
        Arc<crate::history::query::History>,
        Arc<metrics::StoreCounts>,
    )>,
    /// The configuration as `/api/v1/config` shows it (secrets redacted).
    pub config: serde_json::Value,
    pub limits: Vec<floodwall_detect::EffectiveLimits>,
    /// Infected hosts and campaigns, as the hunt thread last published them.
    pub hunt: Arc<crate::hunt::HuntView>,
    /// The C2 null routes, when `[hunt] c2_feeds` names any.
    pub c2_routes: Option<Arc<crate::act::c2_routes::C2Source>>,
}

/// The running listener.
pub struct HttpServer {
    local: SocketAddr,
    tls: bool,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds the listener (an error names `[http] listen`), loads tokens and certificate, and
    /// serves on a thread of its own.
    pub fn start(config: &HttpConfig, context: HttpContext) -> Result<HttpServer> {
        config.validate().map_err(|e| anyhow!(e))?;
        let tokens = auth::Tokens::load(config.tokens_file.as_deref())?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
            _ => None,
        };
        let listener = std::net::TcpListener::bind(config.listen).with_context(|| {
            format!(
                "cannot listen on [http] listen = {}: another floodwall (or program) has it? \
                 Set [http] listen to a free address or [http] enabled = false",
                config.listen
            )
        })?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let (shutdown, stopped) = tokio::sync::watch::channel(false);
        let app = api::App::new(context, tokens, stopped.clone());
        let is_tls = tls.is_some();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .context("starting the HTTP runtime")?;
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            crate::logging::log(format!("error: http: {e}"));
                            return;
                        }
                    };
                    let router = api::router(app);
                    let mut stopped = stopped;
                    let stop = async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    let served = match tls {
                        Some(acceptor) => {
                            axum::serve(tls::TlsListener::new(listener, acceptor), router)
                                .with_graceful_shutdown(stop)
                                .await
                        }
                        None => {
                            axum::serve(listener, router)
                                .with_graceful_shutdown(stop)
                                .await
                        }
                    };
                    if let Err(e) = served {
                        crate::logging::log(format!("error: http: {e}"));
                    }
                });
            })?;
        Ok(HttpServer {
            local,
            tls: is_tls,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// `http://127.0.0.1:9188` (or `https://`).
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.local
        )
    }

    /// Stops serving: open requests finish, the thread ends.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        // Open requests get a moment to finish; a client that holds on does not hold the
        // daemon's exit.
        if let Some(thread) = self.thread.take() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
    }
}

/// The configuration as the API shows it: webhook addresses keep their scheme and host only
/// (their paths and queries often are the secret, as Slack's are).
pub fn redacted_config(config: &crate::config::Config) -> serde_json::Value {
    let mut value = serde_json::to_value(config).unwrap_or(serde_json::Value::Null);
    if let Some(hooks) = value.get_mut("webhooks").and_then(|w| w.as_array_mut()) {
        for hook in hooks {
            if let Some(url) = hook.get_mut("url") {
                let text = url.as_str().unwrap_or_default();
                let kept = match text.find("://") {
                    Some(i) => {
                        let rest = &text[i + 3..];
                        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                        // user:password@host loses the credentials too.
                        let host = host.rsplit('@').next().unwrap_or(host);
                        format!("{}://{host}/(redacted)", &text[..i])
                    }
                    None => "(redacted)".to_string(),
                };
                *url = serde_json::Value::String(kept);
            }
        }
    }
    value
}
