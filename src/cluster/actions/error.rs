//! The actions' error: API failures worded with verb, resource, namespace and object, and
//! kubectl's own refusals in kubectl's words.

/// Why an action did not happen. API failures name the verb, the object and what to do;
/// refusals mirror kubectl's own messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// `object` is what a person calls it, e.g. `deployment shop/checkout`.
    #[error(
        "forbidden: cannot {verb} {object}: RBAC does not allow {verb} on {resource} in namespace {namespace}{}",
        detail(.message)
    )]
    Forbidden {
        verb: String,
        resource: String,
        namespace: String,
        object: String,
        message: String,
    },
    #[error(
        "unauthorized: cannot {verb} {object}: the API server refused your credentials, log in again"
    )]
    Unauthorized {
        verb: String,
        resource: String,
        namespace: String,
        object: String,
    },
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        kind: String,
        namespace: String,
        name: String,
    },
    #[error(
        "conflict: {kind} {namespace}/{name} changed while it was being written ({verb}); look at it again and retry"
    )]
    Conflict {
        verb: String,
        kind: String,
        namespace: String,
        name: String,
    },
    #[error(
        "cannot {verb} {kind} {namespace}/{name}: the API server rejected it ({code}): {message}"
    )]
    Rejected {
        verb: String,
        kind: String,
        namespace: String,
        name: String,
        code: u16,
        message: String,
    },
    #[error("cannot {verb} {kind} {namespace}/{name}: API server unreachable ({cause})")]
    Unreachable {
        verb: String,
        kind: String,
        namespace: String,
        name: String,
        cause: String,
    },
    #[error("cannot {verb} {kind} {namespace}/{name}: {message}")]
    Other {
        verb: String,
        kind: String,
        namespace: String,
        name: String,
        message: String,
    },
    /// `kubectl rollout pause` on a paused Deployment. Refusals name the Deployment with its
    /// namespace first, then say it in kubectl's words.
    #[error("deployment {namespace}/{name}: deployments.apps \"{name}\" is already paused")]
    AlreadyPaused { namespace: String, name: String },
    /// `kubectl rollout resume` on a Deployment that is not paused.
    #[error("deployment {namespace}/{name}: deployments.apps \"{name}\" is not paused")]
    NotPaused { namespace: String, name: String },
    /// `kubectl rollout restart` on a paused Deployment.
    #[error(
        "deployment {namespace}/{name}: deployments.apps \"{name}\" can't restart paused deployment (run rollout resume first)"
    )]
    RestartPaused { namespace: String, name: String },
    /// `kubectl rollout undo` on a paused Deployment.
    #[error(
        "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume deployment/{name}' and try again"
    )]
    RollbackPaused { name: String },
    /// `kubectl rollout undo` with no earlier revision to go back to.
    #[error("deployment {namespace}/{name}: no rollout history found for deployment \"{name}\"")]
    NoHistory { namespace: String, name: String },
    /// `kubectl rollout undo --to-revision=N` for a revision no ReplicaSet has.
    #[error(
        "deployment {namespace}/{name}: unable to find specified revision {revision} in history"
    )]
    RevisionNotFound {
        namespace: String,
        name: String,
        revision: i64,
    },
    #[error("unable to find container named \"{container}\" in deployment {namespace}/{name}")]
    ContainerNotFound {
        container: String,
        namespace: String,
        name: String,
    },
    #[error("deployment {namespace}/{name} has no containers to set an image on")]
    NoContainers { namespace: String, name: String },
    #[error("replicas must be 0 or more, not {replicas}")]
    InvalidReplicas { replicas: i32 },
}

impl ActionError {
    /// Whether trying the same request again later may succeed: the API server could not be
    /// reached or did not answer in time ([`ActionError::Unreachable`]), or answered 429, 500,
    /// 502, 503 or 504 (overloaded, restarting, behind a failing proxy). Everything else
    /// (refused access, a missing object, a conflict, an invalid request, kubectl's refusals)
    /// stays as it is however long one waits.
    pub fn is_transient(&self) -> bool {
        match self {
            ActionError::Unreachable { .. } => true,
            ActionError::Rejected { code, .. } => matches!(code, 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// What a request was about, for wording its failure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op<'a> {
    /// RBAC verb: `get`, `list`, `patch`, `update`, `create`, `watch`.
    pub verb: &'a str,
    /// RBAC resource with group: `deployments.apps`, `configmaps`.
    pub resource: &'a str,
    /// What a person calls it: `deployment`, `configmap`.
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Op<'_> {
    /// Words a kube error for this request.
    pub(crate) fn error(&self, err: &kube::Error) -> ActionError {
        let (verb, kind, namespace, name) = (
            self.verb.to_string(),
            self.kind.to_string(),
            self.namespace.to_string(),
            self.name.to_string(),
        );
        match err {
            kube::Error::Api(status) => match status.code {
                401 => ActionError::Unauthorized {
                    verb,
                    resource: self.resource.to_string(),
                    object: format!("{kind} {namespace}/{name}"),
                    namespace,
                },
                403 => ActionError::Forbidden {
                    verb,
                    resource: self.resource.to_string(),
                    object: format!("{kind} {namespace}/{name}"),
                    namespace,
                    message: status.message.clone(),
                },
                404 => ActionError::NotFound {
                    kind,
                    namespace,
                    name,
                },
                409 => ActionError::Conflict {
                    verb,
                    kind,
                    namespace,
                    name,
                },
                code => ActionError::Rejected {
                    verb,
                    kind,
                    namespace,
                    name,
                    code,
                    message: status.message.clone(),
                },
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => ActionError::Unreachable {
                verb,
                kind,
                namespace,
                name,
                cause: crate::health::root_cause(err),
            },
            other => ActionError::Other {
                verb,
                kind,
                namespace,
                name,
                message: other.to_string(),
            },
        }
    }

    pub(crate) fn other(&self, message: impl Into<String>) -> ActionError {
        ActionError::Other {
            verb: self.verb.to_string(),
            kind: self.kind.to_string(),
            namespace: self.namespace.to_string(),
            name: self.name.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::actions::deployment_op;
    use kube::core::Status;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            Status::failure(message, "Forbidden")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn forbidden_and_unauthorized_name_the_object() {
        let err = deployment_op("patch", "shop", "checkout").error(&api_error(
            403,
            "deployments.apps \"checkout\" is forbidden: User \"dev\" cannot patch resource",
        ));
        let text = err.to_string();
        assert!(
            text.starts_with(
                "forbidden: cannot patch deployment shop/checkout: RBAC does not allow patch on deployments.apps in namespace shop: "
            ),
            "{text}"
        );
        assert!(text.contains("User \"dev\""), "{text}");
        let bare = deployment_op("patch", "shop", "checkout").error(&api_error(403, ""));
        assert_eq!(
            bare.to_string(),
            "forbidden: cannot patch deployment shop/checkout: RBAC does not allow patch on deployments.apps in namespace shop"
        );
        let unauthorized = deployment_op("get", "shop", "checkout").error(&api_error(401, ""));
        assert_eq!(
            unauthorized.to_string(),
            "unauthorized: cannot get deployment shop/checkout: the API server refused your credentials, log in again"
        );
    }

    #[test]
    fn not_found_names_the_object() {
        let err = deployment_op("get", "shop", "checkout").error(&api_error(404, "nope"));
        assert_eq!(err.to_string(), "deployment shop/checkout not found");
        assert!(matches!(err, ActionError::NotFound { .. }));
    }

    #[test]
    fn conflicts_and_rejections_say_what_to_do() {
        let conflict = deployment_op("patch", "shop", "checkout").error(&api_error(409, "x"));
        assert!(conflict.to_string().contains("retry"), "{conflict}");
        let invalid =
            deployment_op("patch", "shop", "checkout").error(&api_error(422, "spec.replicas bad"));
        assert_eq!(
            invalid.to_string(),
            "cannot patch deployment shop/checkout: the API server rejected it (422): spec.replicas bad"
        );
    }

    #[test]
    fn only_an_unreachable_or_overloaded_api_server_is_transient() {
        let op = deployment_op("patch", "shop", "checkout");
        for code in [429, 500, 502, 503, 504] {
            assert!(op.error(&api_error(code, "busy")).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 422, 501] {
            assert!(!op.error(&api_error(code, "no")).is_transient(), "{code}");
        }
        let unreachable = ActionError::Unreachable {
            verb: "get".into(),
            kind: "deployment".into(),
            namespace: "shop".into(),
            name: "checkout".into(),
            cause: "Connection refused (os error 111)".into(),
        };
        assert!(unreachable.is_transient());
        assert!(!op.other("no such thing").is_transient());
        assert!(!ActionError::RollbackPaused { name: "x".into() }.is_transient());
    }

    #[test]
    fn refusals_use_kubectls_words() {
        assert_eq!(
            ActionError::RollbackPaused { name: "x".into() }.to_string(),
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume deployment/x' and try again"
        );
        assert_eq!(
            ActionError::RevisionNotFound {
                namespace: "shop".into(),
                name: "x".into(),
                revision: 9
            }
            .to_string(),
            "deployment shop/x: unable to find specified revision 9 in history"
        );
        assert_eq!(
            ActionError::NoHistory {
                namespace: "shop".into(),
                name: "x".into()
            }
            .to_string(),
            "deployment shop/x: no rollout history found for deployment \"x\""
        );
        assert_eq!(
            ActionError::AlreadyPaused {
                namespace: "shop".into(),
                name: "x".into()
            }
            .to_string(),
            "deployment shop/x: deployments.apps \"x\" is already paused"
        );
    }
}
