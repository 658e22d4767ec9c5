//! The cluster watch task: Deployments, ReplicaSets and pods of both tracks → [`ClusterEvent`]s.
//! Converts objects into views; reconnects by itself; never decides anything.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, future};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::actions::rollout::revision_of;
use super::client::{WatchFailure, explain, is_forbidden};
use super::model::{ClusterEvent, PodView, ReplicaSetView, WorkloadView};
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
/// watches back off and resume by themselves.
pub async fn run(
    client: Client,
    workloads: Workloads,
    sink: impl Fn(ClusterEvent) + Send + Sync + 'static,
    cancel: CancellationToken,
) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &workloads.namespace);
    let probe_api = deployments.clone();
    let selectors = tokio::select! {
        s = wait_for_selectors(&deployments, &workloads, &sink) => s,
        () = cancel.cancelled() => return,
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &workloads.namespace);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client, &workloads.namespace);
    // ReplicaSets carry their pod template's labels, so the pods' selector finds them too.
    let by_labels = watcher::Config::default().labels(&common_labels(&selectors));
    let ns = workloads.namespace.clone();
    let open = || {
        futures::stream::select_all([
            watcher(pods.clone(), by_labels.clone())
                .default_backoff()
                .map(|e| Source::Pod(Box::new(e)))
                .boxed(),
            watcher(replica_sets.clone(), by_labels.clone())
                .default_backoff()
                .map(|e| Source::ReplicaSet(Box::new(e)))
                .boxed(),
            watcher(deployments.clone(), watcher::Config::default())
                .default_backoff()
                .map(|e| Source::Deployment(Box::new(e)))
                .boxed(),
        ])
    };

    let mut merged = open();
    let mut pod_relist: Option<Vec<PodView>> = None;
    let mut rs_relist: Option<Vec<ReplicaSetView>> = None;
    let mut health = StreamHealth::default();
    // A watch that resumes after an outage says nothing until something changes, and its
    // backoff may have grown to 30 s. So while a stream is failing the API server is asked
    // directly; once it answers, the watches are opened afresh: they list at once, which both
    // refreshes what is on screen and shows each stream live by its own events.
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let next = tokio::select! {
            n = merged.next() => n,
            _ = probe.tick(), if health.any_failing() => {
                let answered = tokio::select! {
                    r = tokio::time::timeout(PROBE_EVERY * 5, probe_api.get(&workloads.stable)) => {
                        matches!(r, Ok(Ok(_)))
                    }
                    () = cancel.cancelled() => return,
                };
                if answered {
                    merged = open();
                    pod_relist = None;
                    rs_relist = None;
                    // Give the fresh lists time to arrive (a namespace of thousands of pods
                    // takes a while) before judging them failing and reopening again.
                    probe.reset_after(PROBE_EVERY * 10);
                }
                continue;
            }
            () = cancel.cancelled() => return,
        };
        let Some(item) = next else { return };
        let (stream, state) = match item {
            Source::Pod(item) => (0, on_pod(*item, &selectors, &mut pod_relist, &sink, &ns)),
            Source::ReplicaSet(item) => (
                1,
                on_replica_set(*item, &workloads, &mut rs_relist, &sink, &ns),
            ),
            Source::Deployment(item) => (2, on_deployment(*item, &workloads, &sink, &ns)),
        };
        if let Some(changed) = health.set(stream, state) {
            sink(ClusterEvent::Health(changed));
        }
    }
}

/// How often the API server is asked whether it is back while a watch stream is failing.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The health of the three watch streams, reported as one: the worst of them, and only when
/// it changes (a busy pod watch would otherwise send "live" with every event).
#[derive(Default)]
struct StreamHealth {
    streams: [Health; 3],
    reported: Option<Health>,
}

impl StreamHealth {
    fn set(&mut self, stream: usize, state: Health) -> Option<Health> {
        if let Some(slot) = self.streams.get_mut(stream) {
            *slot = slot.then(state);
        }
        self.report()
    }

    fn any_failing(&self) -> bool {
        self.streams
            .iter()
            .any(|h| matches!(h, Health::Degraded { .. }))
    }

    fn report(&mut self) -> Option<Health> {
        let worst = worst(&self.streams);
        if self.reported.as_ref() == Some(&worst) {
            return None;
        }
        self.reported = Some(worst.clone());
        Some(worst)
    }
}

/// Forbidden before failing (the oldest failure first) before connecting before live.
fn worst(states: &[Health]) -> Health {
    let rank = |h: &Health| match h {
        Health::Forbidden(_) => 0,
        Health::Degraded { .. } => 1,
        Health::Connecting => 2,
        Health::Live => 3,
    };
    let since = |h: &Health| match h {
        Health::Degraded { since, .. } => Some(*since),
        _ => None,
    };
    states
        .iter()
        .min_by_key(|h| (rank(h), since(h)))
        .cloned()
        .unwrap_or_default()
}

fn on_pod(
    item: Result<watcher::Event<Pod>, watcher::Error>,
    selectors: &[(TrackName, BTreeMap<String, String>)],
    relist: &mut Option<Vec<PodView>>,
    sink: &impl Fn(ClusterEvent),
    ns: &str,
) -> Health {
    match item {
        Ok(event) => {
            let events = Mirrored {
                relisted: ClusterEvent::PodsRelisted,
                applied: ClusterEvent::PodApplied,
                deleted: ClusterEvent::PodDeleted,
            };
            mirror(
                event,
                relist,
                |p| Some(pod_view(p, selectors)),
                events,
                sink,
            );
            Health::Live
        }
        Err(e) => health_for(e, &format!("pods in namespace {ns}")),
    }
}

fn on_replica_set(
    item: Result<watcher::Event<ReplicaSet>, watcher::Error>,
    workloads: &Workloads,
    relist: &mut Option<Vec<ReplicaSetView>>,
    sink: &impl Fn(ClusterEvent),
    ns: &str,
) -> Health {
    match item {
        Ok(event) => {
            let events = Mirrored {
                relisted: ClusterEvent::ReplicaSetsRelisted,
                applied: ClusterEvent::ReplicaSetApplied,
                deleted: ClusterEvent::ReplicaSetDeleted,
            };
            mirror(
                event,
                relist,
                |rs| replica_set_view(rs, workloads),
                events,
                sink,
            );
            Health::Live
        }
        Err(e) => health_for(e, &format!("replicasets in namespace {ns}")),
    }
}

/// The console events one watched kind turns into.
struct Mirrored<V> {
    relisted: fn(Vec<V>) -> ClusterEvent,
    applied: fn(V) -> ClusterEvent,
    deleted: fn(String) -> ClusterEvent,
}

/// Mirrors one watch event into console events: a (re)list is collected and sent whole, so a
/// relist after `410 Gone` replaces the set instead of adding to it; single changes go out as
/// they come. Objects `view` does not want are left out.
fn mirror<K: kube::Resource, V>(
    event: watcher::Event<K>,
    relist: &mut Option<Vec<V>>,
    view: impl Fn(&K) -> Option<V>,
    events: Mirrored<V>,
    sink: &impl Fn(ClusterEvent),
) {
    match event {
        watcher::Event::Init => *relist = Some(Vec::new()),
        watcher::Event::InitApply(obj) => {
            if let (Some(buf), Some(v)) = (relist.as_mut(), view(&obj)) {
                buf.push(v);
            }
        }
        watcher::Event::InitDone => sink((events.relisted)(relist.take().unwrap_or_default())),
        watcher::Event::Apply(obj) => {
            if let Some(v) = view(&obj) {
                sink((events.applied)(v));
            }
        }
        watcher::Event::Delete(obj) => sink((events.deleted)(obj.name_any())),
    }
}

fn on_deployment(
    item: Result<watcher::Event<Deployment>, watcher::Error>,
    workloads: &Workloads,
    sink: &impl Fn(ClusterEvent),
    ns: &str,
) -> Health {
    match item {
        Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d)) => {
            let name = d.metadata.name.clone().unwrap_or_default();
            if let Some(track) = workloads.track_of(&name) {
                sink(ClusterEvent::Workload(track, workload_view(&d)));
            }
            Health::Live
        }
        Ok(_) => Health::Live,
        Err(e) => health_for(e, &format!("deployments in namespace {ns}")),
    }
}

enum Source {
    // Boxed: a Pod is several times the size of a Deployment event and clippy rightly asks
    // not to make every stream item that large.
    Pod(Box<Result<watcher::Event<Pod>, watcher::Error>>),
    ReplicaSet(Box<Result<watcher::Event<ReplicaSet>, watcher::Error>>),
    Deployment(Box<Result<watcher::Event<Deployment>, watcher::Error>>),
}

fn health_for(err: watcher::Error, what: &str) -> Health {
    match WatchFailure::of(err) {
        WatchFailure::Expired => Health::Live,
        WatchFailure::Api(e) if is_forbidden(&e) => Health::Forbidden(explain(&e, "watch", what)),
        WatchFailure::Api(e) => Health::Degraded {
            since: SystemTime::now(),
            error: explain(&e, "watch", what),
        },
        WatchFailure::Other(why) => Health::Degraded {
            since: SystemTime::now(),
            error: format!("watch of {what}: {why}"),
        },
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

/// The revision annotation as the console shows it (`None` when absent or not a number).
fn revision(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<u64> {
    revision_of(meta).and_then(|r| u64::try_from(r).ok())
}

/// A ReplicaSet of one of the plan's Deployments (by its controller owner); others are `None`.
fn replica_set_view(rs: &ReplicaSet, workloads: &Workloads) -> Option<ReplicaSetView> {
    let owner = rs
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == "Deployment" && o.controller == Some(true))?;
    let track = workloads.track_of(&owner.name)?;
    let count = |v: Option<i32>| u32::try_from(v.unwrap_or(0).max(0)).unwrap_or(0);
    let status = rs.status.as_ref();
    Some(ReplicaSetView {
        name: rs.metadata.name.clone().unwrap_or_default(),
        track,
        revision: revision(&rs.metadata),
        desired: count(rs.spec.as_ref().and_then(|s| s.replicas)),
        ready: count(status.and_then(|s| s.ready_replicas)),
    })
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
        revision: revision(&d.metadata),
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
    fn stream_health_reports_the_worst_stream_once() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let down = |s, e: &str| Health::Degraded {
            since: t(s),
            error: e.into(),
        };
        let mut h = StreamHealth::default();
        // Live only when every stream is.
        assert_eq!(h.set(0, Health::Live), Some(Health::Connecting));
        assert_eq!(h.set(1, Health::Live), None);
        assert_eq!(h.set(2, Health::Live), Some(Health::Live));
        assert_eq!(h.set(0, Health::Live), None, "no repeat per event");
        // One stream failing makes the whole source fail; the oldest failure is shown.
        assert_eq!(h.set(1, down(10, "rs")), Some(down(10, "rs")));
        assert_eq!(h.set(0, down(20, "pods")), None);
        // A retry failing again keeps its start, and nothing new is reported.
        assert_eq!(h.set(1, down(30, "rs")), None);
        let forbidden = Health::Forbidden("no".into());
        assert_eq!(h.set(2, forbidden.clone()), Some(forbidden));
        for stream in 0..3 {
            h.set(stream, Health::Live);
        }
        assert_eq!(h.reported, Some(Health::Live));
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
