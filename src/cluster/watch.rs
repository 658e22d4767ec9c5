//! The cluster watch task: Deployments and pods of both tracks → [`ClusterEvent`]s.
//! Converts objects into views; reconnects by itself; never decides anything.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, future};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use super::client::{explain, is_forbidden};
use super::model::{ClusterEvent, PodView, WorkloadView};
use crate::health::Health;
use crate::plan::TrackName;

/// The two Deployments a plan works on.
#[derive(Debug, Clone)]
pub struct Workloads {
    pub namespace: String,
    pub stable: String,
    pub canary: Option<String>,
}

impl Workloads {
    fn track_of(&self, deployment: &str) -> Option<TrackName> {
        if deployment == self.stable {
            Some(TrackName::Stable)
        } else if self.canary.as_deref() == Some(deployment) {
            Some(TrackName::Canary)
        } else {
            None
        }
    }
}

/// Watches until cancelled, reporting through `sink`. Errors become health changes; the
/// watch backs off and resumes by itself.
pub async fn run(
    client: Client,
    workloads: Workloads,
    sink: impl Fn(ClusterEvent) + Send + Sync + 'static,
    cancel: CancellationToken,
) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &workloads.namespace);
    let selectors = tokio::select! {
        s = wait_for_selectors(&deployments, &workloads, &sink) => s,
        () = cancel.cancelled() => return,
    };
    let pods: Api<Pod> = Api::namespaced(client, &workloads.namespace);
    let common = common_labels(&selectors);
    let pod_config = watcher::Config::default().labels(&common);
    let mut relist: Option<Vec<PodView>> = None;
    let ns = workloads.namespace.clone();

    let pod_stream = watcher(pods, pod_config)
        .default_backoff()
        .map(|e| Source::Pod(Box::new(e)))
        .boxed();
    let deploy_stream = watcher(deployments, watcher::Config::default())
        .default_backoff()
        .map(|e| Source::Deployment(Box::new(e)))
        .boxed();
    let mut merged = futures::stream::select(pod_stream, deploy_stream);

    loop {
        let next = tokio::select! {
            n = merged.next() => n,
            () = cancel.cancelled() => return,
        };
        let Some(item) = next else { return };
        match item {
            Source::Pod(item) => on_pod(*item, &selectors, &mut relist, &sink, &ns),
            Source::Deployment(item) => on_deployment(*item, &workloads, &sink, &ns),
        }
    }
}

fn on_pod(
    item: Result<watcher::Event<Pod>, watcher::Error>,
    selectors: &[(TrackName, BTreeMap<String, String>)],
    relist: &mut Option<Vec<PodView>>,
    sink: &impl Fn(ClusterEvent),
    ns: &str,
) {
    match item {
        Ok(event) => {
            sink(ClusterEvent::Health(Health::Live));
            match event {
                watcher::Event::Init => *relist = Some(Vec::new()),
                watcher::Event::InitApply(pod) => {
                    if let Some(buf) = relist.as_mut() {
                        buf.push(pod_view(&pod, selectors));
                    }
                }
                watcher::Event::InitDone => {
                    sink(ClusterEvent::PodsRelisted(
                        relist.take().unwrap_or_default(),
                    ));
                }
                watcher::Event::Apply(pod) => {
                    sink(ClusterEvent::PodApplied(pod_view(&pod, selectors)))
                }
                watcher::Event::Delete(pod) => sink(ClusterEvent::PodDeleted(
                    pod.metadata.name.unwrap_or_default(),
                )),
            }
        }
        Err(e) => sink(health_for(&e, &format!("pods in namespace {ns}"))),
    }
}

fn on_deployment(
    item: Result<watcher::Event<Deployment>, watcher::Error>,
    workloads: &Workloads,
    sink: &impl Fn(ClusterEvent),
    ns: &str,
) {
    match item {
        Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d)) => {
            let name = d.metadata.name.clone().unwrap_or_default();
            if let Some(track) = workloads.track_of(&name) {
                sink(ClusterEvent::Workload(track, workload_view(&d)));
            }
        }
        Ok(_) => {}
        Err(e) => sink(health_for(&e, &format!("deployments in namespace {ns}"))),
    }
}

enum Source {
    // Boxed: a Pod is several times the size of a Deployment event and clippy rightly asks
    // not to make every stream item that large.
    Pod(Box<Result<watcher::Event<Pod>, watcher::Error>>),
    Deployment(Box<Result<watcher::Event<Deployment>, watcher::Error>>),
}

fn health_for(err: &watcher::Error, what: &str) -> ClusterEvent {
    let inner = match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => Some(e),
        _ => None,
    };
    let now = SystemTime::now();
    match inner {
        Some(e) if is_forbidden(e) => {
            ClusterEvent::Health(Health::Forbidden(explain(e, "watch", what)))
        }
        Some(e) => ClusterEvent::Health(Health::Degraded {
            since: now,
            error: explain(e, "watch", what),
        }),
        None => ClusterEvent::Health(Health::Degraded {
            since: now,
            error: format!("watch of {what}: {err}"),
        }),
    }
}

/// The pod selectors of both Deployments, by track. Retries until both exist.
async fn wait_for_selectors(
    api: &Api<Deployment>,
    workloads: &Workloads,
    sink: &(impl Fn(ClusterEvent) + Send + Sync),
) -> Vec<(TrackName, BTreeMap<String, String>)> {
    let mut delay = Duration::from_millis(250);
    loop {
        let names = std::iter::once((TrackName::Stable, workloads.stable.as_str()))
            .chain(workloads.canary.as_deref().map(|c| (TrackName::Canary, c)));
        let lookups = names.map(|(track, name)| async move {
            api.get(name).await.map(|d| (track, d)).map_err(|e| {
                explain(
                    &e,
                    "get",
                    &format!("deployment {}/{name}", workloads.namespace),
                )
            })
        });
        match future::try_join_all(lookups).await {
            Ok(found) => {
                return found
                    .into_iter()
                    .map(|(track, d)| {
                        let labels = d
                            .spec
                            .and_then(|s| s.selector.match_labels)
                            .unwrap_or_default();
                        (track, labels)
                    })
                    .collect();
            }
            Err(why) => {
                sink(ClusterEvent::Health(Health::Degraded {
                    since: SystemTime::now(),
                    error: why,
                }));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// A label selector both tracks' pods match, so one watch sees both.
fn common_labels(selectors: &[(TrackName, BTreeMap<String, String>)]) -> String {
    let mut iter = selectors.iter().map(|(_, s)| s);
    let Some(first) = iter.next() else {
        return String::new();
    };
    let common: BTreeMap<&String, &String> = iter.fold(first.iter().collect(), |acc, s| {
        acc.into_iter()
            .filter(|(k, v)| s.get(*k) == Some(*v))
            .collect()
    });
    common
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The track whose selector matches the pod; the most specific selector wins.
fn classify(
    labels: &BTreeMap<String, String>,
    selectors: &[(TrackName, BTreeMap<String, String>)],
) -> Option<TrackName> {
    selectors
        .iter()
        .filter(|(_, sel)| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .max_by_key(|(_, sel)| sel.len())
        .map(|(track, _)| *track)
}

/// A pod as `kubectl get pods` would show it.
pub fn pod_view(pod: &Pod, selectors: &[(TrackName, BTreeMap<String, String>)]) -> PodView {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    let statuses = status
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let total = pod
        .spec
        .as_ref()
        .map_or(statuses.len(), |s| s.containers.len());
    let ready = statuses.iter().filter(|c| c.ready).count();
    let restarts: i64 = statuses.iter().map(|c| i64::from(c.restart_count)).sum();
    let mut shown = status
        .and_then(|s| s.reason.clone().or_else(|| s.phase.clone()))
        .unwrap_or_else(|| "Unknown".to_string());
    for c in &statuses {
        let state = c.state.as_ref();
        if let Some(reason) = state
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
        {
            shown = reason;
        } else if let Some(reason) = state
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.reason.clone())
        {
            shown = reason;
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        shown = "Terminating".to_string();
    }
    let image = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    PodView {
        name: pod.metadata.name.clone().unwrap_or_default(),
        track: classify(&labels, selectors),
        ready_containers: u32::try_from(ready).unwrap_or(u32::MAX),
        total_containers: u32::try_from(total).unwrap_or(u32::MAX),
        status: shown,
        restarts: u32::try_from(restarts.max(0)).unwrap_or(u32::MAX),
        created: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| SystemTime::from(t.0)),
        version: image_tag(&image).to_string(),
    }
}

fn workload_view(d: &Deployment) -> WorkloadView {
    let status = d.status.clone().unwrap_or_default();
    let count = |v: Option<i32>| u32::try_from(v.unwrap_or(0).max(0)).unwrap_or(0);
    WorkloadView {
        name: d.metadata.name.clone().unwrap_or_default(),
        desired: count(d.spec.as_ref().and_then(|s| s.replicas)),
        ready: count(status.ready_replicas),
        updated: count(status.updated_replicas),
        available: count(status.available_replicas),
        image: d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
    }
}

/// `registry/app:2.4.0` → `2.4.0`; digests and untagged images as they are.
pub fn image_tag(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once('@') {
        Some((_, digest)) => digest,
        None => last.split_once(':').map_or("latest", |(_, tag)| tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn common_labels_select_both_tracks() {
        let s = vec![
            (
                TrackName::Stable,
                sel(&[("app", "checkout"), ("track", "stable")]),
            ),
            (
                TrackName::Canary,
                sel(&[("app", "checkout"), ("track", "canary")]),
            ),
        ];
        assert_eq!(common_labels(&s), "app=checkout");
    }

    #[test]
    fn most_specific_selector_wins() {
        let s = vec![
            (TrackName::Stable, sel(&[("app", "checkout")])),
            (
                TrackName::Canary,
                sel(&[("app", "checkout"), ("track", "canary")]),
            ),
        ];
        let pod = sel(&[("app", "checkout"), ("track", "canary"), ("x", "y")]);
        assert_eq!(classify(&pod, &s), Some(TrackName::Canary));
        let pod = sel(&[("app", "checkout")]);
        assert_eq!(classify(&pod, &s), Some(TrackName::Stable));
        assert_eq!(classify(&sel(&[("app", "other")]), &s), None);
    }

    #[test]
    fn image_tags_are_read_like_registries_write_them() {
        assert_eq!(
            image_tag("registry.example.com:5000/shop/checkout:2.4.0"),
            "2.4.0"
        );
        assert_eq!(image_tag("checkout"), "latest");
        assert_eq!(image_tag("checkout@sha256:abc"), "sha256:abc");
    }
}
