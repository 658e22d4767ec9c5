//! The control loops of the simulated cluster: deployment, replica set, scheduler + kubelet, and
//! garbage collector. They write through the store like a real controller manager; no HTTP.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::KubeSim;
use super::defaults;
use super::error::ApiError;
use super::resources::{self, ResourceDef};
use super::snapshot::pod_is_ready;
use super::util::{self, name_of, namespace_of, obj_at, str_at, uid_of};

/// The simulated nodes pods are scheduled onto (Node objects are created at bootstrap).
pub(super) const NODES: &[&str] = &["sim-node-1", "sim-node-2", "sim-node-3"];
/// Must match what seeding writes, so the controller adopts seeded route status unchanged.
pub(super) const GATEWAY_CONTROLLER: &str = "warroom.dev/sim-gateway-controller";
const TICK: Duration = Duration::from_millis(50);
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
            last_event_gc: Instant::now(),
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    ctl.sim.shutdown();
                    return;
                }
                _ = tokio::time::sleep(TICK) => {}
            }
            ctl.reconcile();
        }
    })
}

/// Lifecycle stages of a pod as the scheduler and kubelet move it along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Unscheduled,
    Scheduled,
    Creating,
    Started,
    Ready,
    Terminating,
}

/// Who reports an event, and about which part of the object.
#[derive(Clone, Copy)]
struct Source<'a> {
    component: &'a str,
    host: Option<&'a str>,
    field_path: Option<&'a str>,
}

/// What the Progressing condition should say about the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Created,
    Rolling,
    Paused,
}

struct PodClock {
    stage: Stage,
    due: Instant,
}

struct Controllers {
    sim: KubeSim,
    speed: f64,
    /// When each pod (by uid) is due to move to its next stage.
    pods: HashMap<String, PodClock>,
    next_ip: u32,
    last_event_gc: Instant,
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

/// Keys sorted at every level, so equal templates hash equally however they were written.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, String> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let body: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String((*k).clone())))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn template_without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("pod-template-hash");
    }
    t
}

/// `maxSurge`/`maxUnavailable`: an absolute number or a percentage of `desired` (25 % when
/// unset). Clamped so that no spec, however odd, overflows the rollout arithmetic.
fn resolve(v: Option<&Value>, desired: i64, round_up: bool) -> i64 {
    const LIMIT: i64 = 100_000;
    let percent = |pct: i64| {
        let scaled = desired.clamp(0, LIMIT) * pct.clamp(0, 1000);
        if round_up {
            (scaled + 99) / 100
        } else {
            scaled / 100
        }
    };
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0).clamp(0, LIMIT),
        Some(Value::String(s)) => match s.strip_suffix('%') {
            Some(p) => p.trim().parse::<i64>().map(percent).unwrap_or(0),
            None => s.trim().parse::<i64>().unwrap_or(0).clamp(0, LIMIT),
        },
        _ => percent(25),
    }
}

fn revision(obj: &Value) -> i64 {
    str_at(
        obj,
        "/metadata/annotations/deployment.kubernetes.io~1revision",
    )
    .and_then(|r| r.parse().ok())
    .unwrap_or(0)
}

/// Sets a status condition the way controllers do: `lastTransitionTime` moves only when the
/// status flips, `lastUpdateTime` whenever reason or message change.
fn set_condition(
    conditions: &mut Vec<Value>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    with_update_time: bool,
) {
    let now = util::now_rfc3339();
    let existing = conditions
        .iter_mut()
        .find(|c| str_at(c, "/type") == Some(ty));
    match existing {
        Some(c) if str_at(c, "/status") == Some(status) => {
            if str_at(c, "/reason") != Some(reason) || str_at(c, "/message") != Some(message) {
                util::set_at(c, &["reason"], json!(reason));
                util::set_at(c, &["message"], json!(message));
                if with_update_time {
                    util::set_at(c, &["lastUpdateTime"], json!(now));
                }
            }
        }
        Some(c) => {
            let mut fresh = json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": now});
            if with_update_time {
                util::set_at(&mut fresh, &["lastUpdateTime"], json!(now));
            }
            *c = fresh;
        }
        None => {
            let mut fresh = json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": now});
            if with_update_time {
                util::set_at(&mut fresh, &["lastUpdateTime"], json!(now));
            }
            conditions.push(fresh);
        }
    }
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
    }

    /// Records a core/v1 Event about `obj`, as `kubectl describe` and `get events` show them.
    fn event(&self, obj: &Value, def: &ResourceDef, reason: &str, message: &str, src: Source<'_>) {
        let Source {
            component,
            host,
            field_path,
        } = src;
        let ns = namespace_of(obj);
        let now = util::now_rfc3339();
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
            "metadata": {"name": format!("{}.{:016x}", name_of(obj), rand::rng().random::<u64>()), "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": "Normal",
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

    fn deployments(&mut self) {
        let (deploys, _) = self.sim.store().list(&resources::DEPLOYMENTS, None);
        let (all_rs, _) = self.sim.store().list(&resources::REPLICASETS, None);
        for d in &deploys {
            if is_terminating(d) {
                continue;
            }
            let owned: Vec<&Value> = all_rs
                .iter()
                .filter(|rs| owner_uid(rs) == Some(uid_of(d)))
                .collect();
            if let Err(e) = self.sync_deployment(d, &owned) {
                tracing::debug!(deployment = name_of(d), error = %e, "deployment sync deferred");
            }
        }
    }

    fn sync_deployment(&self, d: &Value, owned: &[&Value]) -> Result<(), ApiError> {
        let store = self.sim.store();
        let ns = namespace_of(d);
        let dname = name_of(d);
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let desired = replicas(d, "/spec/replicas");
        let strategy = d.pointer("/spec/strategy");
        let recreate = strategy.and_then(|s| str_at(s, "/type")) == Some("Recreate");
        let mut max_surge = resolve(
            strategy.and_then(|s| s.pointer("/rollingUpdate/maxSurge")),
            desired,
            true,
        );
        let mut max_unavailable = resolve(
            strategy.and_then(|s| s.pointer("/rollingUpdate/maxUnavailable")),
            desired,
            false,
        );
        if max_surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        if recreate {
            max_surge = 0;
        }
        // A paused Deployment neither starts nor continues a rollout; it only reports status.
        if d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
            let current = owned
                .iter()
                .find(|rs| {
                    rs.pointer("/spec/template").map(template_without_hash)
                        == Some(template_without_hash(&template))
                })
                .or_else(|| owned.iter().max_by_key(|rs| revision(rs)));
            let name = current
                .map(|rs| name_of(rs))
                .unwrap_or_default()
                .to_string();
            return self.deployment_status(d, &name, Progress::Paused, max_unavailable);
        }

        let max_revision = owned.iter().map(|rs| revision(rs)).max().unwrap_or(0);
        let current_new = owned
            .iter()
            .find(|rs| {
                rs.pointer("/spec/template").map(template_without_hash)
                    == Some(template_without_hash(&template))
            })
            .map(|rs| (*rs).clone());
        let mut created_new = false;
        let new_rs = match current_new {
            Some(rs) => {
                // A rollback to an old template makes that ReplicaSet the newest revision again.
                if revision(&rs) < max_revision {
                    let rev = max_revision.saturating_add(1).to_string();
                    store.update_with(&resources::REPLICASETS, ns, name_of(&rs), |r| {
                        obj_at(r, &["metadata", "annotations"])
                            .insert("deployment.kubernetes.io/revision".into(), json!(rev));
                        Ok(())
                    })?
                } else {
                    rs
                }
            }
            None => {
                created_new = true;
                self.create_replicaset(
                    d,
                    &template,
                    max_revision.saturating_add(1),
                    desired,
                    max_surge,
                )?
            }
        };
        let new_name = name_of(&new_rs).to_string();
        let new_rev = revision(&new_rs).to_string();
        if str_at(
            d,
            "/metadata/annotations/deployment.kubernetes.io~1revision",
        ) != Some(new_rev.as_str())
        {
            store.update_with(&resources::DEPLOYMENTS, ns, dname, |dep| {
                obj_at(dep, &["metadata", "annotations"])
                    .insert("deployment.kubernetes.io/revision".into(), json!(new_rev));
                Ok(())
            })?;
        }

        // Fresh copies: the revision write above changed versions.
        let mut olds: Vec<Value> = owned
            .iter()
            .filter(|rs| name_of(rs) != new_name)
            .map(|rs| (*rs).clone())
            .collect();
        olds.sort_by_key(revision);
        let new_spec = replicas(&new_rs, "/spec/replicas");
        let old_spec: i64 = olds.iter().map(|rs| replicas(rs, "/spec/replicas")).sum();
        let all_spec = new_spec + old_spec;

        if recreate {
            if old_spec > 0 {
                for rs in olds.iter().filter(|rs| replicas(rs, "/spec/replicas") > 0) {
                    self.scale_rs(d, rs, 0)?;
                }
            } else if olds.iter().all(|rs| replicas(rs, "/status/replicas") == 0)
                && new_spec != desired
            {
                self.scale_rs(d, &new_rs, desired)?;
            }
        } else {
            // Scale up the new ReplicaSet within the surge budget.
            let target_new = if new_spec < desired {
                let room = (desired + max_surge - all_spec).max(0);
                (new_spec + room).min(desired)
            } else {
                desired
            };
            if target_new != new_spec {
                self.scale_rs(d, &new_rs, target_new)?;
            }
            // Scale down old ReplicaSets while keeping minimum availability.
            let all_spec = target_new + old_spec;
            let min_available = desired - max_unavailable;
            let available: i64 = owned
                .iter()
                .map(|rs| replicas(rs, "/status/availableReplicas"))
                .sum();
            let new_unavailable =
                (target_new - replicas(&new_rs, "/status/availableReplicas")).max(0);
            // Old pods that are not available cost no availability to remove.
            let old_unavailable: i64 = olds
                .iter()
                .map(|rs| {
                    (replicas(rs, "/spec/replicas") - replicas(rs, "/status/availableReplicas"))
                        .max(0)
                })
                .sum();
            let mut budget = if available > min_available {
                (all_spec - min_available - new_unavailable).max(0)
            } else {
                0
            };
            budget = budget.max(old_unavailable.min(old_spec));
            for rs in &olds {
                if budget <= 0 {
                    break;
                }
                let cur = replicas(rs, "/spec/replicas");
                let take = cur.min(budget);
                if take > 0 {
                    self.scale_rs(d, rs, cur - take)?;
                    budget -= take;
                }
            }
        }

        self.cleanup_history(d, &olds);
        let progress = if created_new {
            Progress::Created
        } else {
            Progress::Rolling
        };
        self.deployment_status(d, &new_name, progress, max_unavailable)
    }

    fn create_replicaset(
        &self,
        d: &Value,
        template: &Value,
        revision: i64,
        desired: i64,
        max_surge: i64,
    ) -> Result<Value, ApiError> {
        let ns = namespace_of(d);
        let mut hash_input = canonical(template);
        let mut attempt = 0u32;
        loop {
            let hash = util::safe_encode((util::fnv1a(hash_input.as_bytes()) & 0xffff_ffff) as u32);
            let name = format!("{}-{hash}", name_of(d));
            if self
                .sim
                .store()
                .name_taken(&resources::REPLICASETS, ns, &name)
            {
                // A name clash with a different template: re-hash with a collision count.
                attempt += 1;
                if attempt > 5 {
                    return Err(ApiError::already_exists(&resources::REPLICASETS, &name));
                }
                hash_input = format!("{}{attempt}", canonical(template));
                continue;
            }
            let mut tpl = template.clone();
            obj_at(&mut tpl, &["metadata", "labels"])
                .insert("pod-template-hash".into(), json!(hash));
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            obj_at(&mut selector, &["matchLabels"]).insert("pod-template-hash".into(), json!(hash));
            let labels = tpl
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            let mut rs = json!({
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": labels,
                    "annotations": {
                        "deployment.kubernetes.io/desired-replicas": desired.to_string(),
                        "deployment.kubernetes.io/max-replicas": (desired + max_surge).to_string(),
                        "deployment.kubernetes.io/revision": revision.to_string(),
                    },
                    "ownerReferences": [owner_ref(d, &resources::DEPLOYMENTS)],
                },
                "spec": {"replicas": 0, "minReadySeconds": d.pointer("/spec/minReadySeconds").cloned().unwrap_or(json!(0)), "selector": selector, "template": tpl},
                "status": {"replicas": 0},
            });
            defaults::apply(&resources::REPLICASETS, &mut rs);
            let created = self.sim.store().create(&resources::REPLICASETS, ns, rs)?;
            return Ok(created);
        }
    }

    fn scale_rs(&self, d: &Value, rs: &Value, to: i64) -> Result<(), ApiError> {
        let from = replicas(rs, "/spec/replicas");
        if from == to {
            return Ok(());
        }
        let desired = replicas(d, "/spec/replicas");
        self.sim.store().update_with(
            &resources::REPLICASETS,
            namespace_of(rs),
            name_of(rs),
            |r| {
                util::set_at(r, &["spec", "replicas"], json!(to));
                obj_at(r, &["metadata", "annotations"]).insert(
                    "deployment.kubernetes.io/desired-replicas".into(),
                    json!(desired.to_string()),
                );
                Ok(())
            },
        )?;
        let verb = if to > from { "up" } else { "down" };
        self.event(
            d,
            &resources::DEPLOYMENTS,
            "ScalingReplicaSet",
            &format!(
                "Scaled {verb} replica set {} from {from} to {to}",
                name_of(rs)
            ),
            Source {
                component: "deployment-controller",
                host: None,
                field_path: None,
            },
        );
        Ok(())
    }

    fn cleanup_history(&self, d: &Value, olds: &[Value]) {
        let limit = util::i64_at(d, "/spec/revisionHistoryLimit")
            .unwrap_or(10)
            .max(0) as usize;
        let idle: Vec<&Value> = olds
            .iter()
            .filter(|rs| {
                replicas(rs, "/spec/replicas") == 0 && replicas(rs, "/status/replicas") == 0
            })
            .collect();
        if idle.len() > limit {
            for rs in idle.iter().take(idle.len() - limit) {
                let _ =
                    self.sim
                        .store()
                        .delete(&resources::REPLICASETS, namespace_of(rs), name_of(rs));
            }
        }
    }

    fn deployment_status(
        &self,
        d: &Value,
        new_name: &str,
        progress: Progress,
        max_unavailable: i64,
    ) -> Result<(), ApiError> {
        let store = self.sim.store();
        let ns = namespace_of(d);
        let (all_rs, _) = store.list(&resources::REPLICASETS, Some(ns));
        let owned: Vec<&Value> = all_rs
            .iter()
            .filter(|rs| owner_uid(rs) == Some(uid_of(d)))
            .collect();
        let sum = |p: &str| owned.iter().map(|rs| replicas(rs, p)).sum::<i64>();
        let total = sum("/status/replicas");
        let spec_total = sum("/spec/replicas");
        let ready = sum("/status/readyReplicas");
        let available = sum("/status/availableReplicas");
        let new_rs = owned.iter().find(|rs| name_of(rs) == new_name);
        let updated = new_rs
            .map(|rs| replicas(rs, "/status/replicas"))
            .unwrap_or(0);
        let desired = replicas(d, "/spec/replicas");
        let generation = util::i64_at(d, "/metadata/generation").unwrap_or(1);
        let complete = updated == desired
            && total == desired
            && available == desired
            && new_rs.is_some_and(|rs| replicas(rs, "/status/availableReplicas") == desired);

        store.update_with(&resources::DEPLOYMENTS, ns, name_of(d), |dep| {
            let mut conditions: Vec<Value> = dep
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if available >= desired - max_unavailable {
                set_condition(
                    &mut conditions,
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    true,
                );
            } else {
                set_condition(
                    &mut conditions,
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    true,
                );
            }
            let (status, reason, message) = match progress {
                Progress::Paused => (
                    "Unknown",
                    "DeploymentPaused",
                    "Deployment is paused".to_string(),
                ),
                Progress::Created => (
                    "True",
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{new_name}\""),
                ),
                Progress::Rolling if complete => (
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                ),
                Progress::Rolling => (
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{new_name}\" is progressing."),
                ),
            };
            set_condition(
                &mut conditions,
                "Progressing",
                status,
                reason,
                &message,
                true,
            );
            conditions.sort_by_key(|c| {
                if str_at(c, "/type") == Some("Available") {
                    0
                } else {
                    1
                }
            });
            let mut status = json!({
                "observedGeneration": generation,
                "replicas": total,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": available,
                "conditions": conditions,
            });
            let unavailable = (spec_total - available).max(0);
            if unavailable > 0 {
                util::set_at(&mut status, &["unavailableReplicas"], json!(unavailable));
            }
            // The real API omits zero counts (omitempty).
            if let Some(m) = status.as_object_mut() {
                m.retain(|k, v| k == "observedGeneration" || k == "conditions" || v != &json!(0));
            }
            util::set_at(dep, &["status"], status);
            Ok(())
        })?;
        Ok(())
    }

    fn replicasets(&mut self) {
        let store = self.sim.store();
        let (all_rs, _) = store.list(&resources::REPLICASETS, None);
        let (pods, _) = store.list(&resources::PODS, None);
        let mut by_owner: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in &pods {
            if let Some(uid) = owner_uid(p) {
                by_owner.entry(uid).or_default().push(p);
            }
        }
        for rs in &all_rs {
            let owned = by_owner.get(uid_of(rs)).cloned().unwrap_or_default();
            if let Err(e) = self.sync_replicaset(rs, &owned) {
                tracing::debug!(replicaset = name_of(rs), error = %e, "replicaset sync deferred");
            }
        }
    }

    fn sync_replicaset(&mut self, rs: &Value, owned: &[&Value]) -> Result<(), ApiError> {
        let ns = namespace_of(rs);
        let desired = replicas(rs, "/spec/replicas");
        let mut active: Vec<&Value> = owned
            .iter()
            .copied()
            .filter(|p| !is_terminating(p))
            .collect();
        let count = active.len() as i64;
        if !is_terminating(rs) && count < desired {
            for _ in 0..(desired - count) {
                let pod = self.new_pod(rs)?;
                self.event(
                    rs,
                    &resources::REPLICASETS,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", name_of(&pod)),
                    Source {
                        component: "replicaset-controller",
                        host: None,
                        field_path: None,
                    },
                );
            }
        } else if count > desired {
            // Delete the least useful pods first: unscheduled, then not ready, then newest.
            active.sort_by_key(|p| {
                let scheduled = p.pointer("/spec/nodeName").is_some();
                let ready = pod_is_ready(p);
                let created = str_at(p, "/metadata/creationTimestamp")
                    .unwrap_or_default()
                    .to_string();
                (scheduled, ready, std::cmp::Reverse(created))
            });
            for p in active.iter().take((count - desired) as usize) {
                super::api::delete(
                    &self.sim,
                    &resources::PODS,
                    ns,
                    name_of(p),
                    &HashMap::new(),
                    &[],
                )?;
                self.event(
                    rs,
                    &resources::REPLICASETS,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name_of(p)),
                    Source {
                        component: "replicaset-controller",
                        host: None,
                        field_path: None,
                    },
                );
            }
        }
        let (pods_now, _) = self.sim.store().list(&resources::PODS, Some(ns));
        let mine: Vec<&Value> = pods_now
            .iter()
            .filter(|p| owner_uid(p) == Some(uid_of(rs)) && !is_terminating(p))
            .collect();
        let ready = mine.iter().filter(|p| pod_is_ready(p)).count() as i64;
        let generation = util::i64_at(rs, "/metadata/generation").unwrap_or(1);
        let total = mine.len() as i64;
        self.sim
            .store()
            .update_with(&resources::REPLICASETS, ns, name_of(rs), |r| {
                let mut status = json!({
                    "replicas": total,
                    "fullyLabeledReplicas": total,
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "observedGeneration": generation,
                });
                if let Some(m) = status.as_object_mut() {
                    m.retain(|k, v| k == "replicas" || k == "observedGeneration" || v != &json!(0));
                }
                util::set_at(r, &["status"], status);
                Ok(())
            })?;
        Ok(())
    }

    fn new_pod(&self, rs: &Value) -> Result<Value, ApiError> {
        let ns = namespace_of(rs);
        let tpl = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let mut name;
        loop {
            name = format!("{}-{}", name_of(rs), util::random_suffix(5));
            if !self.sim.store().name_taken(&resources::PODS, ns, &name) {
                break;
            }
        }
        let mut metadata = tpl.get("metadata").cloned().unwrap_or(json!({}));
        if let Some(m) = metadata.as_object_mut() {
            m.insert("name".into(), json!(name));
            m.insert("generateName".into(), json!(format!("{}-", name_of(rs))));
            m.insert("namespace".into(), json!(ns));
            m.insert(
                "ownerReferences".into(),
                json!([owner_ref(rs, &resources::REPLICASETS)]),
            );
        }
        let mut pod = json!({
            "metadata": metadata,
            "spec": tpl.get("spec").cloned().unwrap_or(json!({})),
        });
        defaults::apply(&resources::PODS, &mut pod);
        self.sim.store().create(&resources::PODS, ns, pod)
    }

    fn stage_of(pod: &Value) -> Stage {
        if is_terminating(pod) {
            return Stage::Terminating;
        }
        if pod.pointer("/spec/nodeName").is_none() {
            return Stage::Unscheduled;
        }
        let statuses = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array);
        match statuses {
            None => Stage::Scheduled,
            Some(cs) if cs.iter().any(|c| c.pointer("/state/waiting").is_some()) => Stage::Creating,
            Some(_) if pod_is_ready(pod) => Stage::Ready,
            Some(_) => Stage::Started,
        }
    }

    fn delay_for(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Unscheduled => jitter(100, 300, self.speed),
            Stage::Scheduled => jitter(100, 300, self.speed),
            Stage::Creating => jitter(500, 1500, self.speed),
            Stage::Started => jitter(300, 1000, self.speed),
            Stage::Ready => Duration::from_secs(3600),
            Stage::Terminating => jitter(500, 1500, self.speed),
        }
    }

    /// Scheduler and kubelet in one: moves each pod one stage when its jittered delay is up.
    fn kubelet(&mut self) {
        let (pods, _) = self.sim.store().list(&resources::PODS, None);
        let now = Instant::now();
        let live: HashSet<&str> = pods.iter().map(uid_of).collect();
        self.pods.retain(|uid, _| live.contains(uid.as_str()));
        for pod in &pods {
            let stage = Self::stage_of(pod);
            let uid = uid_of(pod).to_string();
            let due = match self.pods.get(&uid) {
                Some(c) if c.stage == stage => c.due,
                _ => {
                    let due = now + self.delay_for(stage);
                    if stage == Stage::Terminating {
                        self.terminating(pod);
                    }
                    self.pods.insert(uid.clone(), PodClock { stage, due });
                    due
                }
            };
            if now < due || stage == Stage::Ready {
                continue;
            }
            if let Err(e) = self.advance(pod, stage) {
                tracing::debug!(pod = name_of(pod), error = %e, "pod transition deferred");
            }
        }
    }

    /// The scheduler's spreading, reduced to its essence: the node running the fewest pods,
    /// ties broken at random.
    fn least_loaded_node(&self) -> &'static str {
        let (pods, _) = self.sim.store().list(&resources::PODS, None);
        let mut load: Vec<(usize, u32, &'static str)> = NODES
            .iter()
            .map(|n| {
                let count = pods
                    .iter()
                    .filter(|p| !is_terminating(p) && str_at(p, "/spec/nodeName") == Some(n))
                    .count();
                (count, rand::rng().random::<u32>(), *n)
            })
            .collect();
        load.sort();
        load.first().map(|(_, _, n)| *n).unwrap_or("sim-node-1")
    }

    /// The kubelet stops the containers: they and the pod stop being ready at once, which is
    /// what takes a terminating pod out of its Service's endpoints.
    fn terminating(&self, pod: &Value) {
        let now = util::now_rfc3339();
        let _ =
            self.sim
                .store()
                .update_with(&resources::PODS, namespace_of(pod), name_of(pod), |p| {
                    let status = obj_at(p, &["status"]);
                    if let Some(list) = status
                        .get_mut("containerStatuses")
                        .and_then(Value::as_array_mut)
                    {
                        for c in list.iter_mut() {
                            util::set_at(c, &["ready"], json!(false));
                        }
                    }
                    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
                        for c in list.iter_mut() {
                            if matches!(str_at(c, "/type"), Some("Ready" | "ContainersReady"))
                                && str_at(c, "/status") == Some("True")
                            {
                                util::set_at(c, &["status"], json!("False"));
                                util::set_at(c, &["lastTransitionTime"], json!(now));
                            }
                        }
                    }
                    Ok(())
                });
        let host = str_at(pod, "/spec/nodeName");
        for c in containers(pod) {
            let cname = str_at(&c, "/name").unwrap_or_default();
            self.event(
                pod,
                &resources::PODS,
                "Killing",
                &format!("Stopping container {cname}"),
                Source {
                    component: "kubelet",
                    host,
                    field_path: Some(&format!("spec.containers{{{cname}}}")),
                },
            );
        }
    }

    fn advance(&mut self, pod: &Value, stage: Stage) -> Result<(), ApiError> {
        let store = self.sim.store();
        let ns = namespace_of(pod);
        let name = name_of(pod);
        let now = util::now_rfc3339();
        match stage {
            Stage::Unscheduled => {
                let node = self.least_loaded_node();
                let updated = store.update_with(&resources::PODS, ns, name, |p| {
                    util::set_at(p, &["spec", "nodeName"], json!(node));
                    let conds = obj_at(p, &["status"]).entry("conditions").or_insert(json!([]));
                    if let Some(list) = conds.as_array_mut() {
                        list.retain(|c| str_at(c, "/type") != Some("PodScheduled"));
                        list.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
                    }
                    Ok(())
                })?;
                self.event(
                    &updated,
                    &resources::PODS,
                    "Scheduled",
                    &format!("Successfully assigned {ns}/{name} to {node}"),
                    Source {
                        component: "default-scheduler",
                        host: None,
                        field_path: None,
                    },
                );
            }
            Stage::Scheduled => {
                let node = str_at(pod, "/spec/nodeName")
                    .unwrap_or("sim-node-1")
                    .to_string();
                let node_index = NODES.iter().position(|n| *n == node).unwrap_or(0) + 1;
                self.next_ip = if self.next_ip >= 250 {
                    10
                } else {
                    self.next_ip + 1
                };
                let ip = format!("10.244.{node_index}.{}", self.next_ip);
                let host_ip = format!("172.18.0.{}", node_index + 1);
                let names: Vec<String> = containers(pod)
                    .iter()
                    .filter_map(|c| str_at(c, "/name").map(str::to_string))
                    .collect();
                let updated = store.update_with(&resources::PODS, ns, name, |p| {
                    let statuses: Vec<Value> = containers(p)
                        .iter()
                        .map(|c| json!({
                            "name": str_at(c, "/name").unwrap_or_default(),
                            "image": str_at(c, "/image").unwrap_or_default(),
                            "imageID": "",
                            "ready": false,
                            "restartCount": 0,
                            "started": false,
                            "state": {"waiting": {"reason": "ContainerCreating"}},
                            "lastState": {},
                            "volumeMounts": [],
                        }))
                        .collect();
                    let not_ready = format!("containers with unready status: [{}]", names.join(" "));
                    let status = obj_at(p, &["status"]);
                    status.insert("phase".into(), json!("Pending"));
                    status.insert("hostIP".into(), json!(host_ip));
                    status.insert("hostIPs".into(), json!([{"ip": host_ip}]));
                    status.insert("podIP".into(), json!(ip));
                    status.insert("podIPs".into(), json!([{"ip": ip}]));
                    status.insert("startTime".into(), json!(now));
                    status.insert("containerStatuses".into(), json!(statuses));
                    status.insert("conditions".into(), json!([
                        {"type": "PodReadyToStartContainers", "status": "False", "lastProbeTime": null, "lastTransitionTime": now},
                        {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
                        {"type": "Ready", "status": "False", "lastProbeTime": null, "lastTransitionTime": now, "reason": "ContainersNotReady", "message": not_ready},
                        {"type": "ContainersReady", "status": "False", "lastProbeTime": null, "lastTransitionTime": now, "reason": "ContainersNotReady", "message": not_ready},
                        {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
                    ]));
                    Ok(())
                })?;
                for c in containers(&updated) {
                    let cname = str_at(&c, "/name").unwrap_or_default();
                    let image = str_at(&c, "/image").unwrap_or_default();
                    self.event(
                        &updated,
                        &resources::PODS,
                        "Pulled",
                        &format!("Container image \"{image}\" already present on machine"),
                        Source {
                            component: "kubelet",
                            host: Some(&node),
                            field_path: Some(&format!("spec.containers{{{cname}}}")),
                        },
                    );
                }
            }
            Stage::Creating => {
                let node = str_at(pod, "/spec/nodeName")
                    .unwrap_or_default()
                    .to_string();
                let updated = store.update_with(&resources::PODS, ns, name, |p| {
                    let statuses: Vec<Value> = containers(p)
                        .iter()
                        .map(|c| {
                            let image = str_at(c, "/image").unwrap_or_default();
                            json!({
                                "name": str_at(c, "/name").unwrap_or_default(),
                                "image": image,
                                "imageID": format!("{image}@sha256:{:016x}{:016x}", util::fnv1a(image.as_bytes()), util::fnv1a(name.as_bytes())),
                                "containerID": format!("containerd://{:016x}{:016x}", rand::rng().random::<u64>(), rand::rng().random::<u64>()),
                                "ready": false,
                                "restartCount": 0,
                                "started": true,
                                "state": {"running": {"startedAt": now}},
                                "lastState": {},
                                "volumeMounts": [],
                            })
                        })
                        .collect();
                    let status = obj_at(p, &["status"]);
                    status.insert("phase".into(), json!("Running"));
                    status.insert("containerStatuses".into(), json!(statuses));
                    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
                        for c in list.iter_mut() {
                            if str_at(c, "/type") == Some("PodReadyToStartContainers") {
                                util::set_at(c, &["status"], json!("True"));
                                util::set_at(c, &["lastTransitionTime"], json!(now));
                            }
                        }
                    }
                    Ok(())
                })?;
                for c in containers(&updated) {
                    let cname = str_at(&c, "/name").unwrap_or_default();
                    let fp = format!("spec.containers{{{cname}}}");
                    self.event(
                        &updated,
                        &resources::PODS,
                        "Created",
                        &format!("Created container: {cname}"),
                        Source {
                            component: "kubelet",
                            host: Some(&node),
                            field_path: Some(&fp),
                        },
                    );
                    self.event(
                        &updated,
                        &resources::PODS,
                        "Started",
                        &format!("Started container {cname}"),
                        Source {
                            component: "kubelet",
                            host: Some(&node),
                            field_path: Some(&fp),
                        },
                    );
                }
            }
            Stage::Started => {
                store.update_with(&resources::PODS, ns, name, |p| {
                    let status = obj_at(p, &["status"]);
                    if let Some(list) = status.get_mut("containerStatuses").and_then(Value::as_array_mut) {
                        for c in list.iter_mut() {
                            util::set_at(c, &["ready"], json!(true));
                        }
                    }
                    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
                        for c in list.iter_mut() {
                            if matches!(str_at(c, "/type"), Some("Ready" | "ContainersReady")) {
                                *c = json!({"type": c["type"].clone(), "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
                            }
                        }
                    }
                    Ok(())
                })?;
            }
            Stage::Terminating => {
                store.delete(&resources::PODS, ns, name)?;
            }
            Stage::Ready => {}
        }
        Ok(())
    }

    /// A gateway controller's view of each HTTPRoute: accepted by its parents, and whether
    /// every backend Service exists (ResolvedRefs), with the generation it looked at.
    fn gateway(&self) {
        let store = self.sim.store();
        let (routes, _) = store.list(&resources::HTTPROUTES, None);
        let (services, _) = store.list(&resources::SERVICES, None);
        for route in &routes {
            let ns = namespace_of(route);
            let generation = util::i64_at(route, "/metadata/generation").unwrap_or(1);
            let missing: Vec<String> = route
                .pointer("/spec/rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|rule| rule.get("backendRefs").and_then(Value::as_array))
                .flatten()
                .filter(|b| str_at(b, "/kind").unwrap_or("Service") == "Service")
                .filter_map(|b| {
                    let name = str_at(b, "/name")?;
                    let bns = str_at(b, "/namespace").unwrap_or(ns);
                    let found = services
                        .iter()
                        .any(|s| namespace_of(s) == bns && name_of(s) == name);
                    (!found).then(|| name.to_string())
                })
                .collect();
            let resolved = match missing.first() {
                None => (
                    "True",
                    "ResolvedRefs",
                    "All references resolved".to_string(),
                ),
                Some(name) => (
                    "False",
                    "BackendNotFound",
                    format!("Service \"{name}\" not found"),
                ),
            };
            let parents: Vec<Value> = route
                .pointer("/spec/parentRefs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let old_parents: Vec<Value> = route
                .pointer("/status/parents")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let now = util::now_rfc3339();
            let new_parents: Vec<Value> = parents
                .iter()
                .map(|p| {
                    let mut parent_ref = p.clone();
                    if let Some(m) = parent_ref.as_object_mut() {
                        m.entry("group")
                            .or_insert(json!("gateway.networking.k8s.io"));
                        m.entry("kind").or_insert(json!("Gateway"));
                    }
                    let old = old_parents
                        .iter()
                        .find(|o| o.get("parentRef") == Some(&parent_ref));
                    let condition = |ty: &str, status: &str, reason: &str, message: &str| {
                        let since = old
                            .and_then(|o| o.get("conditions"))
                            .and_then(Value::as_array)
                            .and_then(|cs| {
                                cs.iter().find(|c| {
                                    str_at(c, "/type") == Some(ty)
                                        && str_at(c, "/status") == Some(status)
                                })
                            })
                            .and_then(|c| str_at(c, "/lastTransitionTime"))
                            .map(str::to_string)
                            .unwrap_or_else(|| now.clone());
                        json!({"type": ty, "status": status, "reason": reason, "message": message,
                               "observedGeneration": generation, "lastTransitionTime": since})
                    };
                    json!({
                        "parentRef": parent_ref,
                        "controllerName": GATEWAY_CONTROLLER,
                        "conditions": [
                            condition("Accepted", "True", "Accepted", "Route is accepted"),
                            condition("ResolvedRefs", resolved.0, resolved.1, &resolved.2),
                        ],
                    })
                })
                .collect();
            if new_parents != old_parents {
                let _ = store.update_with(&resources::HTTPROUTES, ns, name_of(route), |r| {
                    obj_at(r, &["status"]).insert("parents".into(), json!(new_parents));
                    Ok(())
                });
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

fn containers(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        assert_eq!(resolve(Some(&json!("25%")), 4, true), 1);
        assert_eq!(resolve(Some(&json!("25%")), 5, true), 2);
        assert_eq!(resolve(Some(&json!("25%")), 5, false), 1);
        assert_eq!(resolve(Some(&json!(2)), 5, false), 2);
        assert_eq!(resolve(None, 1, false), 0);
    }

    #[test]
    fn canonical_form_ignores_key_order() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[1,{"q":1,"p":2}]}}"#)
            .unwrap_or_default();
        let b: Value = serde_json::from_str(r#"{"a":{"x":[1,{"p":2,"q":1}],"y":2},"b":1}"#)
            .unwrap_or_default();
        assert_eq!(canonical(&a), canonical(&b));
    }
}
