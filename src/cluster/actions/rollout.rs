//! `kubectl rollout undo` for Deployments, with kubectl 1.32 `DeploymentRollbacker`'s choice of
//! revision, refusals, skip rule, annotations and wording.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::{ActionError, Op, deployment_op, get_deployment};

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";

/// Annotations kubectl keeps from the Deployment and never copies back from the ReplicaSet.
pub const ANNOTATIONS_NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

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

/// A revision annotation as kubectl reads it: absent is 0, not a number is unusable.
fn revision_of(annotations: Option<&BTreeMap<String, String>>) -> Option<i64> {
    match annotations.and_then(|a| a.get(REVISION)) {
        None => Some(0),
        Some(r) => r.parse().ok(),
    }
}

/// The ReplicaSets whose controller is this Deployment (by uid).
async fn owned_replicasets(
    client: &Client,
    namespace: &str,
    d: &Deployment,
) -> Result<Vec<ReplicaSet>, ActionError> {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let uid = d.metadata.uid.as_deref().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    // matchLabels narrows the list; ownership is decided by the controller reference alone.
    let selector = d
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
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
    replicasets: Vec<ReplicaSet>,
    to_revision: i64,
) -> Result<(i64, ReplicaSet), ActionError> {
    let mut latest: Option<(i64, ReplicaSet)> = None;
    let mut previous: Option<(i64, ReplicaSet)> = None;
    for rs in replicasets {
        let Some(v) = revision_of(rs.metadata.annotations.as_ref()) else {
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

/// A pod template as JSON without the hash label, with empty maps and lists and nulls left
/// out: kubectl compares templates semantically, where nil and empty are equal.
fn comparable(template: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
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
/// patch. Unlike kubectl, the patch also tests `metadata.resourceVersion`, so a Deployment
/// changed since it was read is a conflict instead of being overwritten.
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
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = get_deployment(&api, namespace, name).await?;
    undo_from(client, namespace, name, d, to_revision).await
}

/// `undo` on the Deployment `d` as read; the patch holds only if it is still at that version.
async fn undo_from(
    client: &Client,
    namespace: &str,
    name: &str,
    d: Deployment,
    to_revision: i64,
) -> Result<UndoOutcome, ActionError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let owned = owned_replicasets(client, namespace, &d).await?;
    let (_, rs) = pick_revision(namespace, name, owned, to_revision)?;
    let spec = d.spec.as_ref();
    if spec.and_then(|s| s.paused).unwrap_or(false) {
        return Err(ActionError::RollbackPaused { name: name.into() });
    }
    let op = deployment_op("patch", namespace, name);
    let mut template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let current = spec.map(|s| s.template.clone()).unwrap_or_default();
    if comparable(&template) == comparable(&current) {
        return Ok(UndoOutcome::Skipped {
            revision: to_revision,
        });
    }
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
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
    let rolled_to = revision_of(rs.metadata.annotations.as_ref()).unwrap_or(0);
    let template = serde_json::to_value(&template).map_err(|e| op.other(e.to_string()))?;
    let read_version = d.metadata.resource_version.clone().unwrap_or_default();
    // `replace` needs the member to exist; a Deployment without annotations gets them added.
    let annotations_op = if d.metadata.annotations.is_some() {
        "replace"
    } else {
        "add"
    };
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": read_version},
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
        // A failed `test` is answered 422; it is a conflict when the object moved on.
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 409 => {
            let now = get_deployment(&api, namespace, name).await?;
            if now.metadata.resource_version.as_deref() != Some(read_version.as_str()) {
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
    use kube::api::ObjectMeta;

    /// An in-process simulator with its controllers, and a client to it.
    async fn simulator() -> (Client, tokio_util::sync::CancellationToken) {
        let sim = crate::sim::kube::KubeSim::new();
        let cancel = tokio_util::sync::CancellationToken::new();
        crate::sim::kube::spawn_controllers(sim.clone(), 20.0, cancel.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let app = crate::sim::kube::router(sim);
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        let url = format!("http://127.0.0.1:{port}").parse().expect("url");
        let client = Client::try_from(kube::Config::new(url)).expect("client");
        (client, cancel)
    }

    #[tokio::test]
    async fn undo_from_a_stale_read_is_a_conflict_and_writes_nothing() {
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
        let stale = api.get("web").await.expect("get");
        let annotate = json!({"metadata": {"annotations": {"note": "changed meanwhile"}}});
        api.patch("web", &PatchParams::default(), &Patch::Merge(annotate))
            .await
            .expect("annotate");
        let result = undo_from(&client, "default", "web", stale, 1).await;
        assert!(
            matches!(result, Err(ActionError::Conflict { .. })),
            "{result:?}"
        );
        let now = api.get("web").await.expect("get");
        let image_now = now
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
        assert_eq!(image_now.as_deref(), Some("web:2"), "nothing written");
        // Read afresh, the same undo goes through.
        assert_eq!(
            undo(&client, "default", "web", Some(1)).await,
            Ok(UndoOutcome::RolledBack { revision: 1 })
        );
        cancel.cancel();
    }

    fn rs(name: &str, revision: Option<&str>) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: revision
                    .map(|r| BTreeMap::from([(REVISION.to_string(), r.to_string())])),
                ..ObjectMeta::default()
            },
            ..ReplicaSet::default()
        }
    }

    fn picked(to: i64, sets: Vec<ReplicaSet>) -> Result<String, ActionError> {
        pick_revision("default", "web", sets, to)
            .map(|(_, rs)| rs.metadata.name.unwrap_or_default())
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
        assert_eq!(
            picked(0, vec![rs("a", Some("1"))]),
            Err(ActionError::NoHistory {
                namespace: "default".into(),
                name: "web".into()
            })
        );
        assert_eq!(
            picked(0, vec![]),
            Err(ActionError::NoHistory {
                namespace: "default".into(),
                name: "web".into()
            })
        );
        // No annotation reads as revision 0, as kubectl reads it.
        assert_eq!(
            picked(0, vec![rs("z", None), rs("a", Some("1"))]),
            Ok("z".into())
        );
    }

    #[test]
    fn templates_compare_without_the_hash_label_and_empty_fields() {
        let a: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
            "spec": {"containers": [{"name": "web", "image": "x:1", "ports": []}]}
        }))
        .unwrap_or_default();
        let b: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {}},
            "spec": {"containers": [{"name": "web", "image": "x:1"}]}
        }))
        .unwrap_or_default();
        assert_eq!(comparable(&a), comparable(&b));
        let c: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "x:2"}]}
        }))
        .unwrap_or_default();
        assert_ne!(comparable(&a), comparable(&c));
    }
}
