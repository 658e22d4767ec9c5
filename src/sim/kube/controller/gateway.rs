//! A gateway controller's status for HTTPRoutes (Accepted, ResolvedRefs). It must not change
//! route specs; traffic weights are the user's.

use serde_json::{Value, json};

use super::{Controllers, GATEWAY_CONTROLLER};
use crate::sim::kube::resources;
use crate::sim::kube::util::{self, name_of, namespace_of, obj_at, str_at};

impl Controllers {
    /// A gateway controller's view of each HTTPRoute: accepted by its parents, and whether
    /// every backend Service exists (ResolvedRefs), with the generation it looked at.
    pub(super) fn gateway(&self) {
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
}
