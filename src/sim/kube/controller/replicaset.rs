//! The ReplicaSet controller: creates and deletes pods to match `spec.replicas` and reports
//! ReplicaSet status. It must not move pods through their lifecycle (the kubelet does).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Controllers, Source, is_terminating, owner_ref, owner_uid, replicas};
use crate::sim::kube::defaults;
use crate::sim::kube::error::ApiError;
use crate::sim::kube::resources;
use crate::sim::kube::snapshot::pod_is_ready;
use crate::sim::kube::util::{self, name_of, namespace_of, str_at, uid_of};

impl Controllers {
    pub(super) fn replicasets(&mut self) {
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
        // The pods this ReplicaSet may still own after this sync: the live ones it had and the
        // ones it creates now. Their current state is read back below.
        let mut candidates: Vec<String> = active.iter().map(|p| name_of(p).to_string()).collect();
        if !is_terminating(rs) && count < desired {
            for _ in 0..(desired - count) {
                let pod = self.new_pod(rs)?;
                candidates.push(name_of(&pod).to_string());
                self.event(
                    rs,
                    &resources::REPLICASETS,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", name_of(&pod)),
                    Source {
                        component: "replicaset-controller",
                        host: None,
                        field_path: None,
                        warning: false,
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
                crate::sim::kube::api::delete(
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
                        warning: false,
                    },
                );
            }
        }
        let pods_now: Vec<Value> = candidates
            .iter()
            .filter_map(|name| self.sim.store().get(&resources::PODS, ns, name).ok())
            .collect();
        let mine: Vec<&Value> = pods_now
            .iter()
            .filter(|p| owner_uid(p) == Some(uid_of(rs)) && !is_terminating(p))
            .collect();
        let ready = mine.iter().filter(|p| pod_is_ready(p)).count() as i64;
        // Available means ready for at least minReadySeconds.
        let min_ready = util::i64_at(rs, "/spec/minReadySeconds")
            .unwrap_or(0)
            .max(0);
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let available = mine
            .iter()
            .filter(|p| pod_is_ready(p))
            .filter(|p| {
                min_ready == 0
                    || p.pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .find(|c| str_at(c, "/type") == Some("Ready"))
                        .and_then(|c| str_at(c, "/lastTransitionTime"))
                        .and_then(util::parse_time)
                        .is_some_and(|t| now - t.as_second() >= min_ready)
            })
            .count() as i64;
        let generation = util::i64_at(rs, "/metadata/generation").unwrap_or(1);
        let total = mine.len() as i64;
        self.sim
            .store()
            .update_with(&resources::REPLICASETS, ns, name_of(rs), |r| {
                let mut status = json!({
                    "replicas": total,
                    "fullyLabeledReplicas": total,
                    "readyReplicas": ready,
                    "availableReplicas": available,
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
}
