//! Simulated RBAC denials: rules that make the API server refuse requests with `403 Forbidden`
//! and the message a real API server sends. Switched on and off by the `forbidden` fault; it
//! decides only whether a request (or a review asking about one) is denied, and stores nothing.

use std::sync::Mutex;

use axum::http::Method;

use super::error::ApiError;
use super::resources::ResourceDef;

/// The user the simulator's kubeconfig authenticates as, named in denial messages.
pub const SIM_USER: &str = "warroom-sim";

/// Which requests a denial covers; `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyRule {
    /// RBAC verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: Option<String>,
    /// Resource plural, optionally with a subresource: `pods`, `deployments/scale`.
    pub resource: Option<String>,
    pub namespace: Option<String>,
}

/// The active denials, by id.
#[derive(Debug, Default)]
pub struct Denials {
    rules: Mutex<Vec<(u64, DenyRule)>>,
    next: std::sync::atomic::AtomicU64,
}

/// One request as RBAC sees it.
pub struct Request<'a> {
    pub method: &'a Method,
    pub watch: bool,
    pub def: &'a ResourceDef,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub sub: Option<&'a str>,
}

impl Request<'_> {
    /// The RBAC verb of the request, as the API server derives it.
    pub fn verb(&self) -> &'static str {
        match (self.method, self.name.is_some()) {
            (&Method::GET, true) => "get",
            (&Method::GET, false) if self.watch => "watch",
            (&Method::GET, false) => "list",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, true) => "delete",
            (&Method::DELETE, false) => "deletecollection",
            _ => "unknown",
        }
    }

    /// What RBAC decides on for this request.
    pub fn attributes(&self) -> Attributes<'_> {
        Attributes {
            verb: self.verb(),
            group: self.def.group,
            resource: self.def.plural,
            subresource: self.sub,
            namespace: self.namespace,
        }
    }
}

/// What an authorization decision is about: a verb on a resource (and subresource) in a
/// namespace. Requests and SelfSubjectAccessReviews both come down to it, so a review can
/// never disagree with the request it asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    /// Empty for the core group.
    pub group: &'a str,
    /// Resource plural.
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    /// `None`: cluster scope (or all namespaces).
    pub namespace: Option<&'a str>,
}

impl Attributes<'_> {
    /// `deployments/scale`, as RBAC rules and denial messages name a subresource.
    fn resource_path(&self) -> String {
        match self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.to_string(),
        }
    }
}

impl Denials {
    /// Adds a rule; the id removes it again.
    pub fn deny(&self, rule: DenyRule) -> u64 {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.lock().push((id, rule));
        id
    }

    pub fn allow(&self, id: u64) {
        self.lock().retain(|(i, _)| *i != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, DenyRule)>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an active rule covers `attrs`. A rule on a resource covers its subresources
    /// too; a rule on `deployments/scale` covers only the subresource. Rules name no API
    /// group, so they match the plural in any group.
    pub fn denies(&self, attrs: &Attributes<'_>) -> bool {
        let path = attrs.resource_path();
        self.lock().iter().any(|(_, rule)| {
            rule.verb.as_deref().is_none_or(|v| v == attrs.verb)
                && rule
                    .resource
                    .as_deref()
                    .is_none_or(|r| r == path || r == attrs.resource)
                && rule
                    .namespace
                    .as_deref()
                    .is_none_or(|n| Some(n) == attrs.namespace)
        })
    }

    /// The reason RBAC gives for refusing `attrs`, worded as the real API server words it
    /// (the part after `… is forbidden: `).
    pub fn denial_reason(attrs: &Attributes<'_>) -> String {
        let scope = match attrs.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        format!(
            "User \"{SIM_USER}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
            attrs.verb,
            attrs.resource_path(),
            attrs.group
        )
    }

    /// `Err(403)` worded as the real API server words it when a rule covers the request.
    pub fn check(&self, req: &Request<'_>) -> Result<(), ApiError> {
        let attrs = req.attributes();
        if !self.denies(&attrs) {
            return Ok(());
        }
        let subject = match req.name {
            Some(name) => format!("{} \"{name}\"", req.def.qualified()),
            None => req.def.qualified(),
        };
        Err(ApiError::Forbidden {
            message: format!("{subject} is forbidden: {}", Self::denial_reason(&attrs)),
            group: req.def.group.to_string(),
            kind: req.def.plural.to_string(),
            name: req.name.unwrap_or_default().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kube::resources;

    fn request<'a>(method: &'a Method, name: Option<&'a str>, watch: bool) -> Request<'a> {
        Request {
            method,
            watch,
            def: &resources::PODS,
            namespace: Some("shop"),
            name,
            sub: None,
        }
    }

    #[test]
    fn denials_match_verb_resource_and_namespace_and_read_like_the_api_server() {
        let d = Denials::default();
        let id = d.deny(DenyRule {
            verb: Some("watch".into()),
            resource: Some("pods".into()),
            namespace: Some("shop".into()),
        });
        assert!(
            d.check(&request(&Method::GET, None, false)).is_ok(),
            "list allowed"
        );
        let err = d
            .check(&request(&Method::GET, None, true))
            .expect_err("watch denied");
        assert_eq!(err.code().as_u16(), 403);
        assert_eq!(
            err.to_string(),
            "pods is forbidden: User \"warroom-sim\" cannot watch resource \"pods\" in API group \"\" in the namespace \"shop\""
        );
        d.allow(id);
        assert!(d.check(&request(&Method::GET, None, true)).is_ok());
        d.deny(DenyRule {
            verb: None,
            resource: None,
            namespace: None,
        });
        let err = d
            .check(&request(&Method::PATCH, Some("web-1"), false))
            .expect_err("everything denied");
        assert!(
            err.to_string().starts_with(
                "pods \"web-1\" is forbidden: User \"warroom-sim\" cannot patch resource \"pods\""
            ),
            "{err}"
        );
    }

    #[test]
    fn a_rule_on_a_resource_covers_its_subresources_but_not_the_reverse() {
        let d = Denials::default();
        let attrs = |resource, subresource| Attributes {
            verb: "patch",
            group: "apps",
            resource,
            subresource,
            namespace: Some("shop"),
        };
        let scale = d.deny(DenyRule {
            verb: Some("patch".into()),
            resource: Some("deployments/scale".into()),
            namespace: None,
        });
        assert!(d.denies(&attrs("deployments", Some("scale"))));
        assert!(!d.denies(&attrs("deployments", None)));
        d.allow(scale);
        d.deny(DenyRule {
            verb: None,
            resource: Some("deployments".into()),
            namespace: Some("shop".into()),
        });
        assert!(d.denies(&attrs("deployments", Some("scale"))));
        assert!(d.denies(&attrs("deployments", None)));
        assert_eq!(
            Denials::denial_reason(&attrs("deployments", Some("scale"))),
            "User \"warroom-sim\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"shop\""
        );
    }
}
