//! `kubectl rollout undo` for Deployments, with kubectl 1.32 `DeploymentRollbacker`'s choice of
//! revision, refusals, skip rule, annotations and wording.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams};
use serde_json::{Value, json};

use super::{ActionError, Op, deployment_op};

/// The revision annotation the Deployment controller writes on Deployments and ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";

/// Annotations kubectl keeps from the Deployment and never copies back from the ReplicaSet.
pub const ANNOTATIONS_NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// The revision of a Deployment or ReplicaSet: its [`REVISION_ANNOTATION`] as a number;
/// `None` when the annotation is absent or not a number.
pub fn revision_of(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .parse()
        .ok()
}

/// What `undo` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoOutcome {
    /// The Deployment's template now is that of `revision`; the controller rolls it out.
    RolledBack { revision: i64 },
    /// The template already matched; nothing was written. `revision` is the one asked for
    /// (0 when none was), as kubectl reports it.
    Skipped { revision: i64 },
}

impl UndoOutcome {
    /// kubectl's line for it, e.g. `deployment.apps/checkout rolled back`.
    pub fn message(&self, name: &str) -> String {
        match self {
            UndoOutcome::RolledBack { .. } => format!("deployment.apps/{name} rolled back"),
            UndoOutcome::Skipped { revision } => format!(
                "deployment.apps/{name} skipped rollback (current template already matches revision {revision})"
            ),
        }
    }
}

/// A ReplicaSet's revision as kubectl's rollback reads it: absent is 0, not a number is
/// unusable.
fn history_revision(meta: &ObjectMeta) -> Option<i64> {
    match meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
    {
        None => Some(0),
        Some(_) => revision_of(meta),
    }
}

/// Deployments and ReplicaSets are read as raw JSON here: a pod template carries fields
/// k8s-openapi may not know (a newer cluster's), and an undo must neither drop them from the
/// template it writes back nor overlook them when comparing templates.
fn dynamic<K>(client: &Client, namespace: &str) -> Api<DynamicObject>
where
    K: kube::Resource<DynamicType = ()>,
{
    Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<K>(&()))
}

async fn get_raw_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<DynamicObject, ActionError> {
    dynamic::<Deployment>(client, namespace)
        .get(name)
        .await
        .map_err(|e| deployment_op("get", namespace, name).error(&e))
}

/// The ReplicaSets whose controller is this Deployment (by uid), as raw JSON.
async fn owned_replicasets(
    client: &Client,
    namespace: &str,
    d: &DynamicObject,
) -> Result<Vec<DynamicObject>, ActionError> {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let uid = d.metadata.uid.as_deref().unwrap_or_default();
    let api = dynamic::<ReplicaSet>(client, namespace);
    // matchLabels narrows the list; ownership is decided by the controller reference alone.
    let selector = d
        .data
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let op = Op {
        verb: "list",
        resource: "replicasets.apps",
        kind: "replicasets of deployment",
        namespace,
        name,
    };
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| op.error(&e))?;
    Ok(list
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata.owner_references.as_ref().is_some_and(|refs| {
                refs.iter()
                    .any(|r| r.controller == Some(true) && !uid.is_empty() && r.uid == uid)
            })
        })
        .collect())
}

/// kubectl's choice of ReplicaSet: `to_revision` exactly, or (0) the second-newest revision.
fn pick_revision(
    namespace: &str,
    name: &str,
    replicasets: Vec<DynamicObject>,
    to_revision: i64,
) -> Result<(i64, DynamicObject), ActionError> {
    let mut latest: Option<(i64, DynamicObject)> = None;
    let mut previous: Option<(i64, DynamicObject)> = None;
    for rs in replicasets {
        let Some(v) = history_revision(&rs.metadata) else {
            continue;
        };
        if to_revision == 0 {
            if latest.as_ref().is_none_or(|(l, _)| *l < v) {
                previous = latest.take();
                latest = Some((v, rs));
            } else if previous.as_ref().is_none_or(|(p, _)| *p < v) {
                previous = Some((v, rs));
            }
        } else if v == to_revision {
            return Ok((v, rs));
        }
    }
    if to_revision > 0 {
        return Err(ActionError::RevisionNotFound {
            namespace: namespace.into(),
            name: name.into(),
            revision: to_revision,
        });
    }
    previous.ok_or_else(|| ActionError::NoHistory {
        namespace: namespace.into(),
        name: name.into(),
    })
}

/// Takes the hash label out of a raw pod template's labels.
fn strip_hash_label(template: &mut Value) {
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
}

/// A raw pod template without the hash label, with empty maps and lists and nulls left out:
/// kubectl compares templates semantically, where nil and empty are equal. Fields unknown to
/// k8s-openapi take part like any other.
fn comparable(template: &Value) -> Value {
    let mut v = template.clone();
    strip_hash_label(&mut v);
    prune_empty(&mut v);
    v
}

fn prune_empty(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for child in m.values_mut() {
                prune_empty(child);
            }
            m.retain(|_, c| match c {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            });
        }
        Value::Array(a) => a.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

/// `kubectl rollout undo deployment/<name> [--to-revision=N]`: puts the pod template of the
/// previous revision (or `to_revision`) back, with the ReplicaSet's annotations, in one JSON
/// patch. The template is copied as raw JSON, so fields this client does not know survive.
/// Unlike kubectl, the patch also tests `metadata.generation`, so a Deployment whose spec
/// changed since it was read is a conflict instead of being overwritten; status writes (the
/// controller's, all through a rollout) do not move the generation and do not get in the way.
pub async fn undo(
    client: &Client,
    namespace: &str,
    name: &str,
    to_revision: Option<i64>,
) -> Result<UndoOutcome, ActionError> {
    let to_revision = to_revision.unwrap_or(0);
    if to_revision < 0 {
        return Err(ActionError::RevisionNotFound {
            namespace: namespace.into(),
            name: name.into(),
            revision: to_revision,
        });
    }
    let d = get_raw_deployment(client, namespace, name).await?;
    undo_from(client, namespace, name, d, to_revision).await
}

/// `undo` on the Deployment `d` as read; the patch holds only if its spec is still at that
/// generation.
async fn undo_from(
    client: &Client,
    namespace: &str,
    name: &str,
    d: DynamicObject,
    to_revision: i64,
) -> Result<UndoOutcome, ActionError> {
    let api = dynamic::<Deployment>(client, namespace);
    let owned = owned_replicasets(client, namespace, &d).await?;
    let (_, rs) = pick_revision(namespace, name, owned, to_revision)?;
    if d.data
        .pointer("/spec/paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(ActionError::RollbackPaused { name: name.into() });
    }
    let op = deployment_op("patch", namespace, name);
    let mut template = rs
        .data
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let current = d
        .data
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if comparable(&template) == comparable(&current) {
        return Ok(UndoOutcome::Skipped {
            revision: to_revision,
        });
    }
    strip_hash_label(&mut template);
    let kept = d.metadata.annotations.clone().unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = kept
        .into_iter()
        .filter(|(k, _)| ANNOTATIONS_NOT_COPIED.contains(&k.as_str()))
        .collect();
    for (k, v) in rs.metadata.annotations.clone().unwrap_or_default() {
        if !ANNOTATIONS_NOT_COPIED.contains(&k.as_str()) {
            annotations.insert(k, v);
        }
    }
    let rolled_to = history_revision(&rs.metadata).unwrap_or(0);
    // The guard: the spec is as read. A Deployment always has a generation; should one not,
    // the resourceVersion stands in, stricter but still safe.
    let guard = match d.metadata.generation {
        Some(g) => json!({"op": "test", "path": "/metadata/generation", "value": g}),
        None => json!({
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": d.metadata.resource_version.clone().unwrap_or_default(),
        }),
    };
    // `replace` needs the member to exist; a Deployment without annotations gets them added.
    let annotations_op = if d.metadata.annotations.is_some() {
        "replace"
    } else {
        "add"
    };
    let patch: json_patch::Patch = serde_json::from_value(json!([
        guard,
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": annotations_op, "path": "/metadata/annotations", "value": annotations},
    ]))
    .map_err(|e| op.other(e.to_string()))?;
    match api
        .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
    {
        Ok(_) => Ok(UndoOutcome::RolledBack {
            revision: rolled_to,
        }),
        // A failed `test` is answered 422; it is a conflict when the spec moved on.
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 409 => {
            let now = get_raw_deployment(client, namespace, name).await?;
            let moved = match d.metadata.generation {
                Some(_) => now.metadata.generation != d.metadata.generation,
                None => now.metadata.resource_version != d.metadata.resource_version,
            };
            if moved {
                Err(ActionError::Conflict {
                    verb: "rollout undo".into(),
                    kind: "deployment".into(),
                    namespace: namespace.into(),
                    name: name.into(),
                })
            } else {
                Err(op.error(&kube::Error::Api(s)))
            }
        }
        Err(e) => Err(op.error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-process simulator with its controllers, and a client to it.
    async fn simulator() -> (Client, tokio_util::sync::CancellationToken) {
        let sim = crate::sim::kube::KubeSim::new();
        let cancel = tokio_util::sync::CancellationToken::new();
        crate::sim::kube::spawn_controllers(sim.clone(), 20.0, cancel.clone());
        let addr = crate::sim::kube::serve_loopback(sim, cancel.clone())
            .await
            .expect("serve");
        let url = format!("http://{addr}").parse().expect("url");
        let client = Client::try_from(kube::Config::new(url)).expect("client");
        (client, cancel)
    }

    #[tokio::test]
    async fn undo_from_a_stale_read_conflicts_on_spec_changes_not_status_writes() {
        let (client, cancel) = simulator().await;
        let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let d: Deployment = serde_json::from_value(json!({
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
        api.create(&Default::default(), &d).await.expect("create");
        let image = |i: &str| {
            Patch::Strategic(
                json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": i}]}}}}),
            )
        };
        let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        // Revision 2 only once revision 1's ReplicaSet exists.
        for (image_name, count) in [("web:1", 1), ("web:2", 2)] {
            if image_name != "web:1" {
                api.patch("web", &PatchParams::default(), &image(image_name))
                    .await
                    .expect("set image");
            }
            while rs_api
                .list(&ListParams::default())
                .await
                .expect("list")
                .items
                .len()
                < count
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no ReplicaSet {count}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        // Status writes since the read are no conflict: the controller makes them all along.
        let read = get_raw_deployment(&client, "default", "web")
            .await
            .expect("get");
        let status = json!({"status": {"collisionCount": 7}});
        api.patch_status("web", &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("status write");
        assert_ne!(
            api.get("web").await.expect("get").metadata.resource_version,
            read.metadata.resource_version,
            "the status write moved the resourceVersion"
        );
        assert_eq!(
            undo_from(&client, "default", "web", read, 1).await,
            Ok(UndoOutcome::RolledBack { revision: 1 })
        );
        let image_now = |d: Deployment| {
            d.spec
                .and_then(|s| s.template.spec)
                .and_then(|s| s.containers.first().and_then(|c| c.image.clone()))
        };
        assert_eq!(
            image_now(api.get("web").await.expect("get")).as_deref(),
            Some("web:1")
        );
        // The controller makes the web:1 ReplicaSet revision 3 before the next undo looks.
        while api
            .get("web")
            .await
            .ok()
            .and_then(|d| revision_of(&d.metadata))
            != Some(3)
        {
            assert!(tokio::time::Instant::now() < deadline, "no revision 3");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Back to web:2 (revision 4), then a spec change since the read: a conflict.
        assert_eq!(
            undo(&client, "default", "web", None).await,
            Ok(UndoOutcome::RolledBack { revision: 2 })
        );
        let stale = get_raw_deployment(&client, "default", "web")
            .await
            .expect("get");
        let scale = json!({"spec": {"replicas": 2}});
        api.patch("web", &PatchParams::default(), &Patch::Merge(scale))
            .await
            .expect("scale");
        let result = undo_from(&client, "default", "web", stale, 3).await;
        assert!(
            matches!(result, Err(ActionError::Conflict { .. })),
            "{result:?}"
        );
        assert_eq!(
            image_now(api.get("web").await.expect("get")).as_deref(),
            Some("web:2"),
            "nothing written"
        );
        // Read afresh, the same undo goes through.
        assert_eq!(
            undo(&client, "default", "web", Some(3)).await,
            Ok(UndoOutcome::RolledBack { revision: 3 })
        );
        cancel.cancel();
    }

    fn rs(name: &str, revision: Option<&str>) -> DynamicObject {
        let mut rs = DynamicObject::new(name, &ApiResource::erase::<ReplicaSet>(&()));
        rs.metadata.annotations =
            revision.map(|r| BTreeMap::from([(REVISION_ANNOTATION.to_string(), r.to_string())]));
        rs
    }

    fn picked(to: i64, sets: Vec<DynamicObject>) -> Result<String, ActionError> {
        pick_revision("default", "web", sets, to)
            .map(|(_, rs)| rs.metadata.name.unwrap_or_default())
    }

    fn no_history() -> ActionError {
        ActionError::NoHistory {
            namespace: "default".into(),
            name: "web".into(),
        }
    }

    #[test]
    fn revision_choice_matches_kubectl() {
        let sets = || {
            vec![
                rs("a", Some("1")),
                rs("c", Some("3")),
                rs("b", Some("2")),
                rs("odd", Some("seven")),
            ]
        };
        assert_eq!(picked(0, sets()), Ok("b".into()));
        assert_eq!(picked(1, sets()), Ok("a".into()));
        assert_eq!(
            picked(7, sets()),
            Err(ActionError::RevisionNotFound {
                namespace: "default".into(),
                name: "web".into(),
                revision: 7
            })
        );
        assert_eq!(picked(0, vec![rs("a", Some("1"))]), Err(no_history()));
        assert_eq!(picked(0, vec![]), Err(no_history()));
        // No annotation reads as revision 0, as kubectl reads it.
        assert_eq!(
            picked(0, vec![rs("z", None), rs("a", Some("1"))]),
            Ok("z".into())
        );
    }

    #[test]
    fn revision_of_reads_the_annotation_or_nothing() {
        let meta = |r: Option<&str>| rs("x", r).metadata;
        assert_eq!(revision_of(&meta(Some("12"))), Some(12));
        assert_eq!(revision_of(&meta(Some("seven"))), None);
        assert_eq!(revision_of(&meta(None)), None);
        assert_eq!(history_revision(&meta(None)), Some(0));
        assert_eq!(history_revision(&meta(Some("seven"))), None);
    }

    #[test]
    fn templates_compare_without_the_hash_label_and_empty_fields() {
        let a = json!({
            "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
            "spec": {"containers": [{"name": "web", "image": "x:1", "ports": []}]}
        });
        let b = json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {}},
            "spec": {"containers": [{"name": "web", "image": "x:1"}]}
        });
        assert_eq!(comparable(&a), comparable(&b));
        let c = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "x:2"}]}
        });
        assert_ne!(comparable(&a), comparable(&c));
        // A field k8s-openapi does not know still tells templates apart.
        let d = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "x:1"}], "futureField": "on"}
        });
        assert_ne!(comparable(&b), comparable(&d));
    }
}
