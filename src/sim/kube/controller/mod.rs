//! The control loops of the simulated cluster: deployment, replica set, scheduler + kubelet,
//! gateway status and garbage collector. They write through the store like a controller manager.

mod deployment;
mod gateway;
mod kubelet;
mod replicaset;

pub(super) use deployment::old_replicaset;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::KubeSim;
use super::resources::{self, ResourceDef};
use super::util::{self, name_of, namespace_of, str_at, uid_of};

/// The simulated nodes pods are scheduled onto (Node objects are created at bootstrap).
pub(super) const NODES: &[&str] = &["sim-node-1", "sim-node-2", "sim-node-3"];
/// Must match what seeding writes, so the controller adopts seeded route status unchanged.
pub(super) const GATEWAY_CONTROLLER: &str = "warroom.dev/sim-gateway-controller";
const TICK: Duration = Duration::from_millis(50);
/// How often the loops run when nothing in the store changed since they last ran: only the
/// clock moves then (a pod's start-up delay ending, a crash-loop back-off), and a tenth of a
/// second late is invisible, while listing and comparing every object 20 times a second costs
/// an idle simulator most of its CPU (a rehearsal runs dozens of simulators at once).
const IDLE_TICK: Duration = Duration::from_millis(100);
/// Event objects kept per namespace; the demo runs for hours and `kubectl get ev` must stay fast.
const MAX_EVENTS_PER_NAMESPACE: usize = 500;

/// Starts every control loop on the current Tokio runtime. `speed` divides all simulated
/// delays (2.0 makes pods start twice as fast); the loops stop when `cancel` fires, which also
/// calls [`KubeSim::shutdown`] so open watches end and the HTTP server can stop.
pub fn spawn_controllers(
    sim: KubeSim,
    speed: f64,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    tokio::spawn(async move {
        let mut ctl = Controllers {
            sim,
            speed,
            pods: HashMap::new(),
            next_ip: 10,
            node_load: Vec::new(),
            last_event_gc: Instant::now(),
            recorded: std::sync::Mutex::new(HashMap::new()),
        };
        // The store's resource version after the last run, and when that was.
        let mut last: Option<(u64, Instant)> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    ctl.sim.shutdown();
                    return;
                }
                _ = tokio::time::sleep(TICK) => {}
            }
            let rv = ctl.sim.store().resource_version();
            if last.is_some_and(|(seen, at)| seen == rv && at.elapsed() < IDLE_TICK) {
                continue;
            }
            ctl.reconcile();
            last = Some((ctl.sim.store().resource_version(), Instant::now()));
        }
    })
}

/// Who reports an event, about which part of the object, and whether it is a Warning.
#[derive(Clone, Copy)]
struct Source<'a> {
    component: &'a str,
    host: Option<&'a str>,
    field_path: Option<&'a str>,
    warning: bool,
}

/// What makes two Events the same to the recorder: object uid, warning, reason, message.
type EventKey = (String, bool, String, String);

struct Controllers {
    sim: KubeSim,
    speed: f64,
    /// When each pod (by uid) is due to move to its next stage.
    pods: HashMap<String, kubelet::PodClock>,
    next_ip: u32,
    /// Pods per node (indexed as `NODES`), counted once per kubelet pass.
    node_load: Vec<usize>,
    last_event_gc: Instant,
    /// The event recorder's correlator: a repeat of (object, type, reason, message) bumps the
    /// count of the Event already recorded, as `(x3 over 2m)` shows on a real cluster.
    recorded: std::sync::Mutex<HashMap<EventKey, (String, String)>>,
}

/// Unix nanoseconds, strictly increasing across calls (event names must be unique).
fn event_stamp() -> u64 {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut prev = LAST.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(
            prev,
            next,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        ) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

fn jitter(lo_ms: u64, hi_ms: u64, speed: f64) -> Duration {
    let ms = rand::rng().random_range(lo_ms..=hi_ms) as f64 / speed;
    Duration::from_millis(ms as u64)
}

fn owner_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| str_at(r, "/uid"))
}

fn owner_ref(owner: &Value, def: &ResourceDef) -> Value {
    json!({
        "apiVersion": def.api_version(),
        "kind": def.kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

fn replicas(obj: &Value, pointer: &str) -> i64 {
    util::i64_at(obj, pointer).unwrap_or(0).max(0)
}

fn is_terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

impl Controllers {
    fn reconcile(&mut self) {
        self.deployments();
        self.replicasets();
        self.kubelet();
        self.gateway();
        self.garbage_collect();
        if self.last_event_gc.elapsed() > Duration::from_secs(10) {
            self.last_event_gc = Instant::now();
            self.trim_events();
        }
        self.sim.store().refresh_snapshot();
    }

    /// Records a core/v1 Event about `obj`, as `kubectl describe` and `get events` show them;
    /// its name is the object's name and the creation time in hex nanoseconds, so a list sorts
    /// an object's events chronologically.
    fn event(&self, obj: &Value, def: &ResourceDef, reason: &str, message: &str, src: Source<'_>) {
        let Source {
            component,
            host,
            field_path,
            warning,
        } = src;
        let ns = namespace_of(obj);
        let now = util::now_rfc3339();
        let key = (
            uid_of(obj).to_string(),
            warning,
            reason.to_string(),
            message.to_string(),
        );
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((ens, ename)) = recorded.get(&key) {
            let bumped = self
                .sim
                .store()
                .update_with(&resources::EVENTS, ens, ename, |e| {
                    let count = util::i64_at(e, "/count").unwrap_or(1) + 1;
                    util::set_at(e, &["count"], json!(count));
                    util::set_at(e, &["lastTimestamp"], json!(now));
                    Ok(())
                });
            if bumped.is_ok() {
                return;
            }
        }
        // Bounded memory: forgetting only means a repeat starts a fresh Event.
        if recorded.len() > 20_000 {
            recorded.clear();
        }
        let event_name = format!("{}.{:x}", name_of(obj), event_stamp());
        recorded.insert(key, (ns.to_string(), event_name.clone()));
        drop(recorded);
        let mut involved = json!({
            "kind": def.kind,
            "namespace": ns,
            "name": name_of(obj),
            "uid": uid_of(obj),
            "apiVersion": def.api_version(),
            "resourceVersion": str_at(obj, "/metadata/resourceVersion").unwrap_or_default(),
        });
        if let Some(fp) = field_path {
            util::set_at(&mut involved, &["fieldPath"], json!(fp));
        }
        let mut source = json!({"component": component});
        if let Some(h) = host {
            util::set_at(&mut source, &["host"], json!(h));
        }
        let ev = json!({
            "metadata": {"name": event_name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": if warning { "Warning" } else { "Normal" },
            "eventTime": null,
            "reportingComponent": component,
            "reportingInstance": host.unwrap_or_default(),
        });
        let _ = self.sim.store().create(&resources::EVENTS, ns, ev);
    }

    fn trim_events(&self) {
        let (events, _) = self.sim.store().list(&resources::EVENTS, None);
        let mut by_ns: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for e in &events {
            by_ns
                .entry(namespace_of(e).to_string())
                .or_default()
                .push(e);
        }
        for (ns, mut evs) in by_ns {
            if evs.len() <= MAX_EVENTS_PER_NAMESPACE {
                continue;
            }
            evs.sort_by_key(|e| super::store::object_rv(e).unwrap_or(0));
            let excess = evs.len() - MAX_EVENTS_PER_NAMESPACE;
            for e in evs.into_iter().take(excess) {
                let _ = self.sim.store().delete(&resources::EVENTS, &ns, name_of(e));
            }
        }
    }

    /// Background cascading deletion: dependents whose controller owner is gone are deleted.
    fn garbage_collect(&self) {
        let store = self.sim.store();
        let (deploys, _) = store.list(&resources::DEPLOYMENTS, None);
        let (rss, _) = store.list(&resources::REPLICASETS, None);
        let (pods, _) = store.list(&resources::PODS, None);
        let owners: HashSet<&str> = deploys.iter().chain(rss.iter()).map(uid_of).collect();
        for rs in &rss {
            if owner_uid(rs).is_some_and(|o| !owners.contains(o)) {
                let _ = store.delete(&resources::REPLICASETS, namespace_of(rs), name_of(rs));
            }
        }
        for p in &pods {
            if !is_terminating(p) && owner_uid(p).is_some_and(|o| !owners.contains(o)) {
                let _ = super::api::delete(
                    &self.sim,
                    &resources::PODS,
                    namespace_of(p),
                    name_of(p),
                    &HashMap::new(),
                    &[],
                );
            }
        }
    }
}
