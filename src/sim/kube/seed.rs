//! Seeding a demo application: namespace, stable and canary Deployments, Services, the traffic
//! object (HTTPRoute, VirtualService, nginx Ingresses or TrafficSplit), ConfigMaps. Goes through the same create path as API clients; it must not start controllers.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::KubeSim;
use super::error::ApiError;
use super::resources::{self, ResourceDef};
use super::util::{self, obj_at};

/// One application with a stable and a canary track.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSeed {
    pub namespace: String,
    /// Value of the `app` label on everything created.
    pub app: String,
    /// Name of the stable Deployment.
    pub stable: String,
    /// Name of the canary Deployment.
    pub canary: String,
    /// Container name in both Deployments.
    pub container: String,
    pub stable_image: String,
    pub canary_image: String,
    /// Images the stable Deployment ran before `stable_image`, oldest first. Each becomes an
    /// old ReplicaSet at 0 replicas (revisions 1..n) and the Deployment is at revision n+1, so
    /// it looks long-lived and `rollout undo` has somewhere to go. Empty: a Deployment at its
    /// first revision, like the canary always is.
    pub stable_history: Vec<String>,
    pub stable_replicas: u32,
    pub canary_replicas: u32,
    pub route: Option<RouteSeed>,
    pub configmaps: Vec<(String, BTreeMap<String, String>)>,
}

/// Which traffic object splits the traffic between the two tracks' Services.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RouteKind {
    /// Gateway API HTTPRoute (with the status a gateway controller writes).
    #[default]
    HttpRoute,
    /// Istio VirtualService (`networking.istio.io/v1`).
    VirtualService,
    /// ingress-nginx: a primary Ingress to the stable Service and the canary Ingress `name`
    /// to the canary Service, with the canary annotations.
    NginxCanaryIngress,
    /// SMI TrafficSplit (`split.smi-spec.io/v1alpha2`) whose apex is the app's name.
    TrafficSplit,
    /// No traffic object: only the two Services (traffic follows ready replicas).
    None,
}

/// The traffic object splitting traffic between the two tracks' Services.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSeed {
    pub kind: RouteKind,
    pub name: String,
    /// Service selecting the stable track (also created).
    pub stable_backend: String,
    /// Service selecting the canary track (also created).
    pub canary_backend: String,
    /// 0–100; the stable backend gets the rest.
    pub canary_weight: u32,
}

use super::controller::GATEWAY_CONTROLLER;
const GATEWAY_NAME: &str = "public-gateway";

fn deployment(seed: &AppSeed, name: &str, track: &str, image: &str, replicas: u32) -> Value {
    let labels = json!({"app": seed.app, "track": track});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": seed.namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": seed.container,
                        "image": image,
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "256Mi"},
                            "limits": {"cpu": "500m", "memory": "512Mi"},
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http"},
                            "initialDelaySeconds": 2,
                            "periodSeconds": 5,
                        },
                    }],
                },
            },
        },
    })
}

/// The stable Deployment, at revision n+1 when it has n older images: the revision its
/// controller gives the current template once the older ReplicaSets exist.
fn stable_deployment(seed: &AppSeed) -> Value {
    let mut d = deployment(
        seed,
        &seed.stable,
        "stable",
        &seed.stable_image,
        seed.stable_replicas,
    );
    if !seed.stable_history.is_empty() {
        let revision = seed.stable_history.len() + 1;
        obj_at(&mut d, &["metadata", "annotations"]).insert(
            "deployment.kubernetes.io/revision".into(),
            json!(revision.to_string()),
        );
    }
    d
}

/// Points the container named `container` of a pod template at `image`.
fn set_image(template: &mut Value, container: &str, image: &str) {
    let containers = template
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut);
    for c in containers.into_iter().flatten() {
        if c.get("name").and_then(Value::as_str) == Some(container) {
            util::set_at(c, &["image"], json!(image));
        }
    }
}

fn service(seed: &AppSeed, name: &str, track: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": seed.namespace, "labels": {"app": seed.app}},
        "spec": {
            "selector": {"app": seed.app, "track": track},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    })
}

fn backend(name: &str, weight: u32) -> Value {
    json!({"group": "", "kind": "Service", "name": name, "port": 80, "weight": weight})
}

fn http_route(seed: &AppSeed, route: &RouteSeed) -> Value {
    let canary = route.canary_weight.min(100);
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": route.name, "namespace": seed.namespace, "labels": {"app": seed.app}},
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME}],
            "hostnames": [format!("{}.{}.example.com", seed.app, seed.namespace)],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [backend(&route.stable_backend, 100 - canary), backend(&route.canary_backend, canary)],
            }],
        },
    })
}

fn virtual_service(seed: &AppSeed, route: &RouteSeed) -> Value {
    let canary = route.canary_weight.min(100);
    let destination = |host: &str, weight: u32| json!({"destination": {"host": host, "port": {"number": 80}}, "weight": weight});
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": route.name, "namespace": seed.namespace, "labels": {"app": seed.app}},
        "spec": {
            "hosts": [seed.app],
            "http": [{
                "name": "primary",
                "route": [destination(&route.stable_backend, 100 - canary), destination(&route.canary_backend, canary)],
            }],
        },
    })
}

/// The primary Ingress's name: the app's, unless the canary Ingress already has it.
fn primary_ingress_name(seed: &AppSeed, route: &RouteSeed) -> String {
    if route.name == seed.app {
        format!("{}-primary", seed.app)
    } else {
        seed.app.clone()
    }
}

fn ingress(seed: &AppSeed, name: &str, service: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": seed.namespace, "labels": {"app": seed.app}, "annotations": annotations},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{
                "host": format!("{}.{}.example.com", seed.app, seed.namespace),
                "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}]},
            }],
        },
    })
}

fn traffic_split(seed: &AppSeed, route: &RouteSeed) -> Value {
    let canary = route.canary_weight.min(100);
    json!({
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": route.name, "namespace": seed.namespace, "labels": {"app": seed.app}},
        "spec": {
            "service": seed.app,
            "backends": [
                {"service": route.stable_backend, "weight": 100 - canary},
                {"service": route.canary_backend, "weight": canary},
            ],
        },
    })
}

/// What the gateway controller would report: the route is attached and its Services resolve.
fn route_status() -> Value {
    let now = util::now_rfc3339();
    json!({"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME},
        "controllerName": GATEWAY_CONTROLLER,
        "conditions": [
            {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Route is accepted", "observedGeneration": 1, "lastTransitionTime": now},
            {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "All references resolved", "observedGeneration": 1, "lastTransitionTime": now},
        ],
    }]})
}

/// What every cluster has before anyone uses it: the system namespaces and the `kubernetes`
/// Service in `default`, so manifests and `kubectl` habits that assume them work.
pub(super) fn bootstrap(sim: &KubeSim) {
    let mut objects: Vec<(&'static ResourceDef, &str, Value)> =
        ["default", "kube-node-lease", "kube-public", "kube-system"]
            .into_iter()
            .map(|ns| {
                (
                    &resources::NAMESPACES,
                    "",
                    json!({"metadata": {"name": ns}}),
                )
            })
            .collect();
    objects.push((
        &resources::SERVICES,
        "default",
        json!({
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "clusterIP": "10.96.0.1",
                "clusterIPs": ["10.96.0.1"],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
        }),
    ));
    for (def, ns, obj) in objects {
        if let Err(e) = super::api::create_object(sim, def, ns, obj, false) {
            tracing::warn!(error = %e, "bootstrapping the simulated cluster");
        }
    }
    for (i, name) in super::controller::NODES.iter().enumerate() {
        if let Err(e) = sim.store().create(&resources::NODES, "", node(name, i + 1)) {
            tracing::warn!(error = %e, "bootstrapping the simulated cluster");
        }
    }
}

/// A Ready worker node as its kubelet reports itself; IPs match what pods on it get.
fn node(name: &str, index: usize) -> Value {
    let now = util::now_rfc3339();
    let condition = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({"type": ty, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "topology.kubernetes.io/zone": format!("sim-zone-{}", (index - 1) % 3 + 1),
            },
        },
        "spec": {"podCIDR": format!("10.244.{index}.0/24"), "podCIDRs": [format!("10.244.{index}.0/24")]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": format!("172.18.0.{}", index + 1)},
                {"type": "Hostname", "address": name},
            ],
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://2.0.5",
                "kernelVersion": "6.8.0-sim",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.33.1",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "bootID": util::new_uid(),
                "machineID": util::new_uid().replace('-', ""),
                "systemUUID": util::new_uid(),
            },
        },
    })
}

impl KubeSim {
    /// Creates the application's objects. Objects that already exist are left as they are, so
    /// seeding twice is harmless.
    pub fn seed_app(&self, seed: &AppSeed) -> Result<(), ApiError> {
        let ns = seed.namespace.as_str();
        let mut objects: Vec<(&'static ResourceDef, Value)> = vec![
            (
                &resources::NAMESPACES,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            ),
            (&resources::DEPLOYMENTS, stable_deployment(seed)),
            (
                &resources::DEPLOYMENTS,
                deployment(
                    seed,
                    &seed.canary,
                    "canary",
                    &seed.canary_image,
                    seed.canary_replicas,
                ),
            ),
        ];
        for (name, data) in &seed.configmaps {
            objects.push((
                &resources::CONFIGMAPS,
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": {"app": seed.app}}, "data": data}),
            ));
        }
        if let Some(route) = &seed.route {
            objects.push((
                &resources::SERVICES,
                service(seed, &route.stable_backend, "stable"),
            ));
            objects.push((
                &resources::SERVICES,
                service(seed, &route.canary_backend, "canary"),
            ));
            match route.kind {
                RouteKind::HttpRoute => {
                    objects.push((&resources::HTTPROUTES, http_route(seed, route)));
                }
                RouteKind::VirtualService => {
                    objects.push((&resources::VIRTUALSERVICES, virtual_service(seed, route)));
                }
                RouteKind::NginxCanaryIngress => {
                    let primary = primary_ingress_name(seed, route);
                    let canary = json!({
                        "nginx.ingress.kubernetes.io/canary": "true",
                        "nginx.ingress.kubernetes.io/canary-weight": route.canary_weight.min(100).to_string(),
                    });
                    objects.push((
                        &resources::INGRESSES,
                        ingress(seed, &primary, &route.stable_backend, json!({})),
                    ));
                    objects.push((
                        &resources::INGRESSES,
                        ingress(seed, &route.name, &route.canary_backend, canary),
                    ));
                }
                RouteKind::TrafficSplit => {
                    objects.push((&resources::TRAFFICSPLITS, traffic_split(seed, route)));
                }
                RouteKind::None => {}
            }
        }
        for (def, obj) in objects {
            let obj_ns = if def.namespaced { ns } else { "" };
            match super::api::create_object(self, def, obj_ns, obj, false) {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.seed_stable_history(seed)?;
        if let Some(route) = seed
            .route
            .as_ref()
            .filter(|r| r.kind == RouteKind::HttpRoute)
        {
            self.store()
                .update_with(&resources::HTTPROUTES, ns, &route.name, |r| {
                    if r.get("status").is_none() {
                        obj_at(r, &[]).insert("status".into(), route_status());
                    }
                    Ok(())
                })?;
        }
        Ok(())
    }

    /// The stable Deployment's older ReplicaSets (see [`AppSeed::stable_history`]), each with
    /// the Deployment's template as created but the older image. They must exist before the
    /// deployment controller first syncs the Deployment, as when seeding precedes
    /// [`super::spawn_controllers`]: the controller then numbers the current template n+1.
    fn seed_stable_history(&self, seed: &AppSeed) -> Result<(), ApiError> {
        if seed.stable_history.is_empty() {
            return Ok(());
        }
        let ns = seed.namespace.as_str();
        let d = self
            .store()
            .get(&resources::DEPLOYMENTS, ns, &seed.stable)?;
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        for (revision, image) in (1..).zip(&seed.stable_history) {
            let mut old = template.clone();
            set_image(&mut old, &seed.container, image);
            let rs = super::controller::old_replicaset(&d, &old, revision);
            match self.store().create(&resources::REPLICASETS, ns, rs) {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(history: &[&str]) -> AppSeed {
        AppSeed {
            namespace: "shop".into(),
            app: "checkout".into(),
            stable: "checkout".into(),
            canary: "checkout-canary".into(),
            container: "app".into(),
            stable_image: "r.io/checkout:2.3.0".into(),
            canary_image: "r.io/checkout:2.4.0".into(),
            stable_history: history.iter().map(|i| i.to_string()).collect(),
            stable_replicas: 4,
            canary_replicas: 2,
            route: None,
            configmaps: Vec::new(),
        }
    }

    #[test]
    fn stable_history_becomes_owned_replicasets_at_zero_with_older_images() {
        let sim = KubeSim::new();
        let seed = seed(&["r.io/checkout:2.1.0", "r.io/checkout:2.2.0"]);
        sim.seed_app(&seed).expect("seeded");
        sim.seed_app(&seed).expect("seeding twice is harmless");
        let d = sim
            .store()
            .get(&resources::DEPLOYMENTS, "shop", "checkout")
            .expect("stable deployment");
        let revision = "/metadata/annotations/deployment.kubernetes.io~1revision";
        assert_eq!(util::str_at(&d, revision), Some("3"));
        let (mut rss, _) = sim.store().list(&resources::REPLICASETS, Some("shop"));
        rss.sort_by_key(|rs| util::str_at(rs, revision).map(str::to_string));
        let seen: Vec<(&str, &str, i64)> = rss
            .iter()
            .map(|rs| {
                let hash = util::str_at(rs, "/metadata/labels/pod-template-hash").unwrap_or("");
                assert_eq!(util::name_of(rs), format!("checkout-{hash}"));
                assert_eq!(
                    util::str_at(rs, "/spec/template/metadata/labels/pod-template-hash"),
                    Some(hash)
                );
                assert_eq!(
                    util::str_at(rs, "/metadata/ownerReferences/0/uid"),
                    Some(util::uid_of(&d))
                );
                (
                    util::str_at(rs, revision).unwrap_or(""),
                    util::str_at(rs, "/spec/template/spec/containers/0/image").unwrap_or(""),
                    util::i64_at(rs, "/spec/replicas").unwrap_or(-1),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("1", "r.io/checkout:2.1.0", 0),
                ("2", "r.io/checkout:2.2.0", 0)
            ],
            "only the stable Deployment has history; the controller makes revision 3"
        );
    }

    #[test]
    fn without_history_nothing_but_the_deployments_is_seeded() {
        let sim = KubeSim::new();
        sim.seed_app(&seed(&[])).expect("seeded");
        let (rss, _) = sim.store().list(&resources::REPLICASETS, Some("shop"));
        assert!(rss.is_empty());
        let d = sim
            .store()
            .get(&resources::DEPLOYMENTS, "shop", "checkout")
            .expect("stable deployment");
        assert!(
            d.pointer("/metadata/annotations")
                .is_none_or(|a| a.get("deployment.kubernetes.io/revision").is_none())
        );
    }
}
