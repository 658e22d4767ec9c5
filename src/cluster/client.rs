//! Building a kube client from a kubeconfig file and context, and wording API errors so an
//! operator can act on them. No watches or actions here.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::health::root_cause;

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read kubeconfig {path}: {why}")]
    Kubeconfig { path: String, why: String },
    #[error("kubeconfig context {context}: {why}")]
    Context { context: String, why: String },
    #[error("cannot build a client for context {context} (server {server}): {why}")]
    Client {
        context: String,
        server: String,
        why: String,
    },
}

/// A connected client and what it points at, for the header and messages.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub context: String,
    pub server: String,
}

/// Connects with `kubeconfig` (or `$KUBECONFIG`, or `~/.kube/config`) and `context` (or the
/// kubeconfig's current context). Does not contact the server.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Connection, ConnectError> {
    let (kc, source) = match kubeconfig {
        Some(path) => (
            Kubeconfig::read_from(path).map_err(|e| ConnectError::Kubeconfig {
                path: path.display().to_string(),
                why: e.to_string(),
            })?,
            path.display().to_string(),
        ),
        None => (
            Kubeconfig::read().map_err(|e| ConnectError::Kubeconfig {
                path: "$KUBECONFIG or ~/.kube/config".to_string(),
                why: e.to_string(),
            })?,
            "$KUBECONFIG".to_string(),
        ),
    };
    let context_name = context
        .map(str::to_string)
        .or_else(|| kc.current_context.clone())
        .unwrap_or_default();
    if !context_name.is_empty() && !kc.contexts.iter().any(|c| c.name == context_name) {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(ConnectError::Context {
            context: context_name,
            why: format!("not in {source}; known contexts: {}", known.join(", ")),
        });
    }
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let mut config = Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| ConnectError::Context {
            context: context_name.clone(),
            why: e.to_string(),
        })?;
    // kube-rs would retry 429/503/504 up to 15 times with backoff, silently: a weight write or
    // rollback would hang for minutes and a watch would look live through an outage. Failures
    // are reported at once instead; the watches back off and retry by themselves, and the
    // operator sees every failed write in the log.
    config.default_retry = false;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| ConnectError::Client {
        context: context_name.clone(),
        server: server.clone(),
        why: e.to_string(),
    })?;
    Ok(Connection {
        client,
        context: context_name,
        server,
    })
}

/// Words a kube error for the log: what failed, on what, and what to do next.
/// `verb` and `what` read like kubectl: (`patch`, `httproutes.gateway.networking.k8s.io shop/checkout`).
pub fn explain(err: &kube::Error, verb: &str, what: &str) -> String {
    match err {
        kube::Error::Api(status) => match status.code {
            401 => format!(
                "cannot {verb} {what}: unauthorized; your credentials were refused — log in again"
            ),
            403 => format!(
                "cannot {verb} {what}: forbidden (RBAC); ask for '{verb}' on it: {}",
                status.message
            ),
            404 => {
                format!("cannot {verb} {what}: not found; check the name and namespace in the plan")
            }
            409 => format!("cannot {verb} {what}: conflict (changed meanwhile); retry"),
            code => format!("cannot {verb} {what}: {} ({code})", status.message),
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            format!(
                "cannot {verb} {what}: API server unreachable ({})",
                root_cause(err)
            )
        }
        other => format!("cannot {verb} {what}: {other}"),
    }
}

/// True for errors that retrying will not cure (401/403).
pub fn is_forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 401 || s.code == 403)
}

/// What a watch failure means, sorted once for every watch (cluster, traffic object, rollout).
#[derive(Debug)]
pub enum WatchFailure {
    /// `410 Gone` on an open watch: its resourceVersion expired and the watcher relists at
    /// once, as every client does. Routine, not an outage.
    Expired,
    /// The API server answered with an error (HTTP, or an ERROR event on the watch).
    Api(kube::Error),
    /// Anything else, worded by kube-runtime.
    Other(String),
}

impl WatchFailure {
    pub fn of(err: kube::runtime::watcher::Error) -> WatchFailure {
        use kube::runtime::watcher::Error;
        match err {
            Error::WatchError(status) if status.code == 410 => WatchFailure::Expired,
            Error::WatchError(status) => WatchFailure::Api(kube::Error::Api(status)),
            Error::InitialListFailed(e) | Error::WatchStartFailed(e) | Error::WatchFailed(e) => {
                WatchFailure::Api(e)
            }
            other => WatchFailure::Other(other.to_string()),
        }
    }
}
