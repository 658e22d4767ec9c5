//! The deployment controller: one ReplicaSet per pod template, rolling updates within
//! maxSurge/maxUnavailable, revisions, history cleanup and Deployment status. No pods.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::{Controllers, Source, is_terminating, owner_ref, owner_uid, replicas};
use crate::sim::kube::defaults;
use crate::sim::kube::error::ApiError;
use crate::sim::kube::resources;
use crate::sim::kube::util::{self, name_of, namespace_of, obj_at, str_at, uid_of};

/// What the Progressing condition should say about the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Created,
    Rolling,
    Paused,
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

/// Deployment annotations the controller never copies onto a ReplicaSet (and kubectl's undo
/// never copies back): they describe the object they sit on, not the pod template.
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// The real controller keeps `revision-history` within this many characters.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// The annotations the new ReplicaSet should carry, as the real controller writes them: the
/// Deployment's annotations (except [`NOT_COPIED`]) copied over, `revision` raised to
/// `new_revision`, and, when an existing ReplicaSet comes back (a rollback), its old revision
/// appended to `revision-history`.
fn new_rs_annotations(
    deployment: &Value,
    rs_annotations: &serde_json::Map<String, Value>,
    new_revision: i64,
) -> serde_json::Map<String, Value> {
    const REVISION: &str = "deployment.kubernetes.io/revision";
    const HISTORY: &str = "deployment.kubernetes.io/revision-history";
    let mut out = rs_annotations.clone();
    if let Some(from) = deployment
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        for (k, v) in from {
            if !NOT_COPIED.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let old = out
        .get(REVISION)
        .and_then(Value::as_str)
        .map(str::to_string);
    let old_number = old
        .as_deref()
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or(0);
    if old_number < new_revision {
        out.insert(REVISION.into(), json!(new_revision.to_string()));
        if let Some(old) = old {
            let history = out.get(HISTORY).and_then(Value::as_str).unwrap_or_default();
            let mut kept: Vec<&str> = history.split(',').filter(|r| !r.is_empty()).collect();
            kept.push(&old);
            while kept.join(",").len() > MAX_REVISION_HISTORY_CHARS && kept.len() > 1 {
                kept.remove(0);
            }
            out.insert(HISTORY.into(), json!(kept.join(",")));
        }
    }
    out
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

/// The `pod-template-hash` the controller gives `template`; `collisions` counts earlier
/// name clashes with ReplicaSets of other templates, each of which re-hashes.
fn pod_template_hash(template: &Value, collisions: u32) -> String {
    let mut input = canonical(template);
    if collisions > 0 {
        input.push_str(&collisions.to_string());
    }
    util::safe_encode((util::fnv1a(input.as_bytes()) & 0xffff_ffff) as u32)
}

/// A ReplicaSet of Deployment `d` at 0 replicas running `template` as revision `revision`,
/// named, labelled and selected by `hash`, annotated as the real controller annotates it.
fn replicaset(
    d: &Value,
    template: &Value,
    hash: &str,
    revision: i64,
    desired: i64,
    max_surge: i64,
) -> Value {
    let mut tpl = template.clone();
    obj_at(&mut tpl, &["metadata", "labels"]).insert("pod-template-hash".into(), json!(hash));
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    obj_at(&mut selector, &["matchLabels"]).insert("pod-template-hash".into(), json!(hash));
    let labels = tpl
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "deployment.kubernetes.io/desired-replicas".into(),
        json!(desired.to_string()),
    );
    annotations.insert(
        "deployment.kubernetes.io/max-replicas".into(),
        json!((desired + max_surge).to_string()),
    );
    let annotations = new_rs_annotations(d, &annotations, revision);
    let mut rs = json!({
        "metadata": {
            "name": format!("{}-{hash}", name_of(d)),
            "namespace": namespace_of(d),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_ref(d, &resources::DEPLOYMENTS)],
        },
        "spec": {"replicas": 0, "minReadySeconds": d.pointer("/spec/minReadySeconds").cloned().unwrap_or(json!(0)), "selector": selector, "template": tpl},
        "status": {"replicas": 0},
    });
    defaults::apply(&resources::REPLICASETS, &mut rs);
    rs
}

/// An earlier revision of Deployment `d`, as the controller leaves one behind after rolling
/// past it: `template` at revision `revision`, scaled to 0. Seeding writes these to give a
/// Deployment a history; the controller treats them like ReplicaSets it made itself.
pub(in crate::sim::kube) fn old_replicaset(d: &Value, template: &Value, revision: i64) -> Value {
    let desired = replicas(d, "/spec/replicas");
    let max_surge = if str_at(d, "/spec/strategy/type") == Some("Recreate") {
        0
    } else {
        resolve(
            d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
            desired,
            true,
        )
    };
    let hash = pod_template_hash(template, 0);
    replicaset(d, template, &hash, revision, desired, max_surge)
}

impl Controllers {
    pub(super) fn deployments(&mut self) {
        let (deploys, _) = self.sim.store().list(&resources::DEPLOYMENTS, None);
        let (all_rs, _) = self.sim.store().list(&resources::REPLICASETS, None);
        let mut by_owner: HashMap<&str, Vec<&Value>> = HashMap::new();
        for rs in &all_rs {
            if let Some(uid) = owner_uid(rs) {
                by_owner.entry(uid).or_default().push(rs);
            }
        }
        for d in &deploys {
            if is_terminating(d) {
                continue;
            }
            let owned = by_owner.get(uid_of(d)).cloned().unwrap_or_default();
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
            return self.deployment_status(d, owned, &name, Progress::Paused, max_unavailable);
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
                // A rollback to an old template makes that ReplicaSet the newest revision again
                // (its old number goes to revision-history); the Deployment's annotations follow
                // onto the current ReplicaSet.
                let new_revision = if revision(&rs) < max_revision {
                    max_revision.saturating_add(1)
                } else {
                    revision(&rs)
                };
                let current = rs
                    .pointer("/metadata/annotations")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let wanted = new_rs_annotations(d, &current, new_revision);
                if wanted != current {
                    store.update_with(&resources::REPLICASETS, ns, name_of(&rs), |r| {
                        util::set_at(r, &["metadata", "annotations"], Value::Object(wanted));
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

        // minReadySeconds follows the Deployment onto every ReplicaSet it owns.
        let min_ready = d
            .pointer("/spec/minReadySeconds")
            .cloned()
            .unwrap_or(json!(0));
        for rs in owned {
            if rs.pointer("/spec/minReadySeconds").unwrap_or(&json!(0)) != &min_ready {
                store.update_with(&resources::REPLICASETS, ns, name_of(rs), |r| {
                    util::set_at(r, &["spec", "minReadySeconds"], min_ready.clone());
                    Ok(())
                })?;
            }
        }

        // Oldest revision first: scale-down drains the oldest ReplicaSets before newer ones.
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
            // Scale down old ReplicaSets while keeping minimum availability, in the real
            // controller's two passes: first old pods that are not available (they cost no
            // availability), then available ones down to `desired - maxUnavailable`.
            let all_spec = target_new + old_spec;
            let min_available = desired - max_unavailable;
            let new_unavailable =
                (target_new - replicas(&new_rs, "/status/availableReplicas")).max(0);
            let max_scaled_down = all_spec - min_available - new_unavailable;
            if max_scaled_down > 0 {
                let mut targets: Vec<i64> = olds
                    .iter()
                    .map(|rs| replicas(rs, "/spec/replicas"))
                    .collect();
                let mut cleaned = 0;
                for (rs, target) in olds.iter().zip(targets.iter_mut()) {
                    if cleaned >= max_scaled_down {
                        break;
                    }
                    let unhealthy = (*target - replicas(rs, "/status/availableReplicas")).max(0);
                    let take = unhealthy.min(max_scaled_down - cleaned);
                    *target -= take;
                    cleaned += take;
                }
                let available: i64 = owned
                    .iter()
                    .map(|rs| replicas(rs, "/status/availableReplicas"))
                    .sum();
                let mut budget = (available - min_available).max(0);
                for target in targets.iter_mut() {
                    if budget <= 0 {
                        break;
                    }
                    let take = (*target).min(budget);
                    *target -= take;
                    budget -= take;
                }
                for (rs, target) in olds.iter().zip(targets) {
                    if target != replicas(rs, "/spec/replicas") {
                        self.scale_rs(d, rs, target)?;
                    }
                }
            }
        }

        self.cleanup_history(d, &olds);
        let progress = if created_new {
            Progress::Created
        } else {
            Progress::Rolling
        };
        self.deployment_status(d, owned, &new_name, progress, max_unavailable)
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
        let mut collisions = 0u32;
        loop {
            let hash = pod_template_hash(template, collisions);
            let name = format!("{}-{hash}", name_of(d));
            if self
                .sim
                .store()
                .name_taken(&resources::REPLICASETS, ns, &name)
            {
                // A name clash with a different template: re-hash with a collision count.
                collisions += 1;
                if collisions > 5 {
                    return Err(ApiError::already_exists(&resources::REPLICASETS, &name));
                }
                continue;
            }
            let rs = replicaset(d, template, &hash, revision, desired, max_surge);
            return self.sim.store().create(&resources::REPLICASETS, ns, rs);
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
                warning: false,
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

    /// `owned` are the ReplicaSets the Deployment owned when this sync began; they and the
    /// new one (`new_name`, possibly created by this sync) are read back in their current state.
    fn deployment_status(
        &self,
        d: &Value,
        owned: &[&Value],
        new_name: &str,
        progress: Progress,
        max_unavailable: i64,
    ) -> Result<(), ApiError> {
        let store = self.sim.store();
        let ns = namespace_of(d);
        let names: BTreeSet<&str> = owned
            .iter()
            .map(|rs| name_of(rs))
            .chain((!new_name.is_empty()).then_some(new_name))
            .collect();
        let current: Vec<Value> = names
            .into_iter()
            .filter_map(|name| store.get(&resources::REPLICASETS, ns, name).ok())
            .collect();
        let owned: Vec<&Value> = current
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

        let deadline = util::i64_at(d, "/spec/progressDeadlineSeconds").unwrap_or(600);
        store.update_with(&resources::DEPLOYMENTS, ns, name_of(d), |dep| {
            let mut conditions: Vec<Value> = dep
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // Any change in the counts is progress; a rollout without progress for
            // progressDeadlineSeconds has timed out (and stays so until progress resumes).
            let count = |k: &str| util::i64_at(dep, &format!("/status/{k}")).unwrap_or(0);
            let progressed = [
                count("replicas"),
                count("updatedReplicas"),
                count("readyReplicas"),
                count("availableReplicas"),
            ] != [total, updated, ready, available];
            let progressing = conditions
                .iter()
                .find(|c| str_at(c, "/type") == Some("Progressing"))
                .cloned();
            let stalled = !progressed
                && progressing.as_ref().is_some_and(|c| {
                    str_at(c, "/reason") == Some("ProgressDeadlineExceeded")
                        || str_at(c, "/lastUpdateTime")
                            .and_then(util::parse_time)
                            .is_some_and(|t| {
                                k8s_openapi::jiff::Timestamp::now().as_second() - t.as_second()
                                    > deadline
                            })
                });
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
                Progress::Rolling if stalled => (
                    "False",
                    "ProgressDeadlineExceeded",
                    format!("ReplicaSet \"{new_name}\" has timed out progressing."),
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
            if progressed
                && let Some(c) = conditions
                    .iter_mut()
                    .find(|c| str_at(c, "/type") == Some("Progressing"))
            {
                util::set_at(c, &["lastUpdateTime"], json!(util::now_rfc3339()));
            }
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
    fn new_replicaset_gets_the_deployments_annotations_but_not_the_skipped_ones() {
        let d = json!({"metadata": {"annotations": {
            "kubernetes.io/change-cause": "set image 2",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "deployment.kubernetes.io/revision": "7",
        }}});
        let out = new_rs_annotations(&d, &serde_json::Map::new(), 3);
        assert_eq!(
            out.get("kubernetes.io/change-cause"),
            Some(&json!("set image 2"))
        );
        assert_eq!(
            out.get("deployment.kubernetes.io/revision"),
            Some(&json!("3"))
        );
        assert!(!out.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(!out.contains_key("deployment.kubernetes.io/revision-history"));
    }

    #[test]
    fn a_replicaset_brought_back_keeps_its_old_revisions_in_history() {
        let d = json!({"metadata": {}});
        let mut rs = serde_json::Map::new();
        rs.insert("deployment.kubernetes.io/revision".into(), json!("1"));
        let once = new_rs_annotations(&d, &rs, 3);
        assert_eq!(
            once.get("deployment.kubernetes.io/revision"),
            Some(&json!("3"))
        );
        assert_eq!(
            once.get("deployment.kubernetes.io/revision-history"),
            Some(&json!("1"))
        );
        let twice = new_rs_annotations(&d, &once, 5);
        assert_eq!(
            twice.get("deployment.kubernetes.io/revision-history"),
            Some(&json!("1,3"))
        );
        // Already the newest: nothing moves.
        assert_eq!(new_rs_annotations(&d, &twice, 5), twice);
        // A revision that is not a number counts as 0 and does not panic.
        let mut odd = serde_json::Map::new();
        odd.insert("deployment.kubernetes.io/revision".into(), json!("x"));
        let fixed = new_rs_annotations(&d, &odd, 2);
        assert_eq!(
            fixed.get("deployment.kubernetes.io/revision"),
            Some(&json!("2"))
        );
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
