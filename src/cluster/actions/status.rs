//! `kubectl rollout status` for Deployments: kubectl 1.32 `DeploymentStatusViewer`'s
//! conditions and wording on one object, and a watch until the rollout is done or the deadline.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use super::{ActionError, deployment_op, get_deployment};
use crate::cluster::client::{WatchFailure, is_forbidden};

/// Where a rollout stands, as `kubectl rollout status` would say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStatus {
    /// `deployment "x" successfully rolled out`
    Done(String),
    /// Not finished yet; kubectl's waiting line.
    Waiting(String),
    /// The rollout cannot finish (progress deadline exceeded).
    Failed(String),
}

impl RolloutStatus {
    pub fn message(&self) -> &str {
        match self {
            RolloutStatus::Done(m) | RolloutStatus::Waiting(m) | RolloutStatus::Failed(m) => m,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, RolloutStatus::Done(_))
    }
}

/// kubectl's `DeploymentStatusViewer` conditions, in its order, on one Deployment object.
pub fn status_of(d: &Deployment) -> RolloutStatus {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::Waiting(
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    let timed_out = status.conditions.as_ref().is_some_and(|cs| {
        cs.iter().any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
    });
    if timed_out {
        return RolloutStatus::Failed(format!(
            "deployment \"{name}\" exceeded its progress deadline"
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let wanted = d.spec.as_ref().and_then(|s| s.replicas);
    if let Some(wanted) = wanted.filter(|w| updated < *w) {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {wanted} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutStatus::Done(format!("deployment \"{name}\" successfully rolled out"))
}

/// `kubectl rollout status deployment/<name> --watch=false`.
pub async fn status(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<RolloutStatus, ActionError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    Ok(status_of(&get_deployment(&api, namespace, name).await?))
}

/// Watches the Deployment until its rollout is done or has failed, or until `deadline`, and
/// returns the status at that moment (`Waiting` when the deadline came first). Failures are
/// retried with backoff until the deadline; if the last thing the watch saw was a failure (the
/// API server went away and has not answered since), that failure is returned, not a stale
/// `Waiting`.
pub async fn wait_complete(
    client: &Client,
    namespace: &str,
    name: &str,
    deadline: tokio::time::Instant,
) -> Result<RolloutStatus, ActionError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let first = get_deployment(&api, namespace, name).await?;
    wait_from(api, namespace, name, &first, deadline).await
}

/// `wait_complete` after its first read, `first`.
async fn wait_from(
    api: Api<Deployment>,
    namespace: &str,
    name: &str,
    first: &Deployment,
    deadline: tokio::time::Instant,
) -> Result<RolloutStatus, ActionError> {
    let mut last = status_of(first);
    if !matches!(last, RolloutStatus::Waiting(_)) {
        return Ok(last);
    }
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    let op = deployment_op("watch", namespace, name);
    // The failure since which nothing has been heard from the API server, if any.
    let mut failing: Option<ActionError> = None;
    loop {
        let next = match tokio::time::timeout_at(deadline, events.next()).await {
            Err(_) | Ok(None) => {
                return match failing {
                    Some(err) => Err(err),
                    None => Ok(last),
                };
            }
            Ok(Some(next)) => next,
        };
        match next {
            // The field selector already narrows the watch; the name check keeps a server that
            // ignores it from mixing in other Deployments.
            Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d))
                if d.metadata.name.as_deref() == Some(name) =>
            {
                failing = None;
                last = status_of(&d);
                if !matches!(last, RolloutStatus::Waiting(_)) {
                    return Ok(last);
                }
            }
            Ok(watcher::Event::Delete(d)) if d.metadata.name.as_deref() == Some(name) => {
                return Err(ActionError::NotFound {
                    kind: "deployment".into(),
                    namespace: namespace.into(),
                    name: name.into(),
                });
            }
            // Any event (a relist starting or ending too) means the API server answered.
            Ok(_) => failing = None,
            Err(e) => match WatchFailure::of(e) {
                WatchFailure::Expired => {}
                // Access errors do not heal by retrying; anything else is retried with backoff.
                WatchFailure::Api(e) if is_forbidden(&e) => return Err(op.error(&e)),
                WatchFailure::Api(e) => failing = Some(op.error(&e)),
                WatchFailure::Other(why) => failing = Some(op.other(why)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use kube::api::ObjectMeta;

    fn deployment(generation: i64, replicas: i32, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..DeploymentSpec::default()
            }),
            status: Some(status),
        }
    }

    fn counts(observed: i64, replicas: i32, updated: i32, available: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ..DeploymentStatus::default()
        }
    }

    #[test]
    fn status_follows_kubectls_order_and_words() {
        let waiting = |d: &Deployment| match status_of(d) {
            RolloutStatus::Waiting(m) => m,
            other => panic!("expected waiting, got {other:?}"),
        };
        assert_eq!(
            waiting(&deployment(2, 3, counts(1, 3, 3, 3))),
            "Waiting for deployment spec update to be observed..."
        );
        assert_eq!(
            waiting(&deployment(2, 3, counts(2, 4, 1, 3))),
            "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated..."
        );
        assert_eq!(
            waiting(&deployment(2, 3, counts(2, 4, 3, 3))),
            "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination..."
        );
        assert_eq!(
            waiting(&deployment(2, 3, counts(2, 3, 3, 2))),
            "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available..."
        );
        assert_eq!(
            status_of(&deployment(2, 3, counts(2, 3, 3, 3))),
            RolloutStatus::Done("deployment \"web\" successfully rolled out".into())
        );
        let mut stuck = counts(2, 3, 1, 1);
        stuck.conditions = Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            ..DeploymentCondition::default()
        }]);
        assert_eq!(
            status_of(&deployment(2, 3, stuck)),
            RolloutStatus::Failed("deployment \"web\" exceeded its progress deadline".into())
        );
        // An object with neither spec nor status reads as done, as in kubectl, and does not panic.
        let bare = Deployment::default();
        assert!(matches!(status_of(&bare), RolloutStatus::Done(_)));
    }

    /// A simulator without controllers (nothing rolls out) on a real port, and a client to it.
    async fn idle_simulator() -> (crate::sim::kube::KubeSim, Client) {
        let sim = crate::sim::kube::KubeSim::new();
        // Never cancelled: it serves until the test's runtime ends.
        let cancel = tokio_util::sync::CancellationToken::new();
        let addr = crate::sim::kube::serve_loopback(sim.clone(), cancel)
            .await
            .expect("serve");
        let url = format!("http://{addr}").parse().expect("url");
        // As the console's client: 503s reported, not retried silently for seconds.
        let mut config = kube::Config::new(url);
        config.default_retry = false;
        let client = Client::try_from(config).expect("client");
        (sim, client)
    }

    #[tokio::test]
    async fn an_outage_after_the_first_read_is_an_error_not_a_stale_waiting() {
        let (sim, client) = idle_simulator().await;
        let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "web:1"}]},
                },
            },
        }))
        .expect("deployment");
        let first = api.create(&Default::default(), &d).await.expect("create");
        // No controller observes it: it waits for ever.
        let soon = || tokio::time::Instant::now() + std::time::Duration::from_millis(700);
        let waiting = wait_from(api.clone(), "default", "web", &first, soon()).await;
        assert!(
            matches!(waiting, Ok(RolloutStatus::Waiting(_))),
            "{waiting:?}"
        );
        sim.api_outage(true);
        let down = wait_from(api.clone(), "default", "web", &first, soon()).await;
        let Err(err) = down else {
            panic!("an outage read as {down:?}");
        };
        assert!(
            err.to_string()
                .starts_with("cannot watch deployment default/web: "),
            "{err}"
        );
        sim.api_outage(false);
        let back = wait_from(api, "default", "web", &first, soon()).await;
        assert!(matches!(back, Ok(RolloutStatus::Waiting(_))), "{back:?}");
    }
}
