//! Cluster actions with kubectl's semantics and wording: set image, scale, pause, resume and
//! restart here; rollout undo in [`rollout`], rollout status in [`status`]; ConfigMap flags,
//! snapshots and restores in [`configmap`]. Every failure is an [`ActionError`] a person can
//! act on.

pub mod configmap;
mod error;
pub mod rollout;
pub mod status;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

pub use configmap::{ConfigMapSnapshot, ConfigMapState, RestoreChange, Restored};
pub use error::ActionError;
pub(crate) use error::Op;
pub use rollout::UndoOutcome;
pub use status::RolloutStatus;

/// The annotation `kubectl rollout restart` stamps on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

pub(crate) fn deployment_op<'a>(verb: &'a str, namespace: &'a str, name: &'a str) -> Op<'a> {
    Op {
        verb,
        resource: "deployments.apps",
        kind: "deployment",
        namespace,
        name,
    }
}

pub(crate) async fn get_deployment(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
) -> Result<Deployment, ActionError> {
    api.get(name)
        .await
        .map_err(|e| deployment_op("get", namespace, name).error(&e))
}

/// What `set image` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChange {
    pub container: String,
    /// The image before, when the container had one.
    pub previous: Option<String>,
    pub image: String,
}

/// `kubectl set image deployment/<name> <container>=<image>`; without a container name, the
/// first container. An init container of that name is updated as kubectl does.
pub async fn set_image(
    client: &Client,
    namespace: &str,
    name: &str,
    container: Option<&str>,
    image: &str,
) -> Result<ImageChange, ActionError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = get_deployment(&api, namespace, name).await?;
    let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    let containers: &[Container] = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let init: &[Container] = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    let (field, found) = match container {
        None => match containers.first() {
            Some(c) => ("containers", c),
            None => {
                return Err(ActionError::NoContainers {
                    namespace: namespace.into(),
                    name: name.into(),
                });
            }
        },
        Some(wanted) => {
            if let Some(c) = containers.iter().find(|c| c.name == wanted) {
                ("containers", c)
            } else if let Some(c) = init.iter().find(|c| c.name == wanted) {
                ("initContainers", c)
            } else {
                return Err(ActionError::ContainerNotFound {
                    container: wanted.into(),
                    namespace: namespace.into(),
                    name: name.into(),
                });
            }
        }
    };
    // A strategic merge patch keyed by container name touches only that container's image.
    let patch =
        json!({"spec": {"template": {"spec": {field: [{"name": found.name, "image": image}]}}}});
    patch_deployment(&api, namespace, name, Patch::Strategic(patch)).await?;
    Ok(ImageChange {
        container: found.name.clone(),
        previous: found.image.clone(),
        image: image.into(),
    })
}

/// What `scale` changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleChange {
    pub previous: i32,
    pub replicas: i32,
}

/// `kubectl scale deployment/<name> --replicas=N`, through the scale subresource.
pub async fn scale(
    client: &Client,
    namespace: &str,
    name: &str,
    replicas: i32,
) -> Result<ScaleChange, ActionError> {
    if replicas < 0 {
        return Err(ActionError::InvalidReplicas { replicas });
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let op = Op {
        resource: "deployments.apps/scale",
        ..deployment_op("get", namespace, name)
    };
    let before = api.get_scale(name).await.map_err(|e| op.error(&e))?;
    let patch = json!({"spec": {"replicas": replicas}});
    let after = api
        .patch_scale(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| {
            Op {
                verb: "patch",
                ..op
            }
            .error(&e)
        })?;
    Ok(ScaleChange {
        previous: before.spec.and_then(|s| s.replicas).unwrap_or(0),
        replicas: after.spec.and_then(|s| s.replicas).unwrap_or(replicas),
    })
}

fn is_paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

async fn patch_deployment(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
    patch: Patch<serde_json::Value>,
) -> Result<Deployment, ActionError> {
    api.patch(name, &PatchParams::default(), &patch)
        .await
        .map_err(|e| deployment_op("patch", namespace, name).error(&e))
}

/// `kubectl rollout pause deployment/<name>`: refuses a Deployment that is already paused.
pub async fn pause(client: &Client, namespace: &str, name: &str) -> Result<(), ActionError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = get_deployment(&api, namespace, name).await?;
    if is_paused(&d) {
        return Err(ActionError::AlreadyPaused {
            namespace: namespace.into(),
            name: name.into(),
        });
    }
    let patch = Patch::Strategic(json!({"spec": {"paused": true}}));
    patch_deployment(&api, namespace, name, patch).await?;
    Ok(())
}

/// `kubectl rollout resume deployment/<name>`: refuses a Deployment that is not paused.
pub async fn resume(client: &Client, namespace: &str, name: &str) -> Result<(), ActionError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = get_deployment(&api, namespace, name).await?;
    if !is_paused(&d) {
        return Err(ActionError::NotPaused {
            namespace: namespace.into(),
            name: name.into(),
        });
    }
    // `paused: false` is the default and omitted, so kubectl's computed patch removes the field.
    let patch = Patch::Strategic(json!({"spec": {"paused": null}}));
    patch_deployment(&api, namespace, name, patch).await?;
    Ok(())
}

/// `kubectl rollout restart deployment/<name>`: stamps [`RESTARTED_AT`] with the current time
/// (RFC 3339, seconds, UTC) on the pod template, which rolls every pod. Refuses a paused
/// Deployment. Returns the stamp written.
pub async fn restart(client: &Client, namespace: &str, name: &str) -> Result<String, ActionError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = get_deployment(&api, namespace, name).await?;
    if is_paused(&d) {
        return Err(ActionError::RestartPaused {
            namespace: namespace.into(),
            name: name.into(),
        });
    }
    let now = jiff::Timestamp::now().as_second();
    let stamp = jiff::Timestamp::from_second(now)
        .map(|t| t.to_string())
        .map_err(|e| deployment_op("patch", namespace, name).other(e.to_string()))?;
    let patch = Patch::Strategic(json!({
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}
    }));
    patch_deployment(&api, namespace, name, patch).await?;
    Ok(stamp)
}
