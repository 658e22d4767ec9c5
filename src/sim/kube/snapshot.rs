//! Derives the [`TrafficSnapshot`] the request generator reads from pods, Services and traffic
//! objects (HTTPRoutes, Istio VirtualServices, ingress-nginx Ingresses, SMI TrafficSplits).
//! A pure function of those objects; it must not write to the store.

use std::collections::BTreeMap;

use serde_json::Value;

use super::selector::{labels_of, map_selects};
use super::util::{name_of, namespace_of, str_at};
use crate::sim::model::{ServiceTraffic, TrackTraffic, TrafficSnapshot};

/// What one pod contributes to its track.
struct PodInfo<'a> {
    name: &'a str,
    ready: bool,
    version: String,
    cpu: f64,
    labels: BTreeMap<String, String>,
}

pub fn pod_is_ready(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    str_at(c, "/type") == Some("Ready") && str_at(c, "/status") == Some("True")
                })
            })
}

/// `registry/shop/checkout:2.3.1` → `2.3.1`; a port in the registry host is not a tag.
pub fn image_tag(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or_default();
    let last = without_digest.rsplit('/').next().unwrap_or_default();
    match last.split_once(':') {
        Some((_, tag)) => tag.to_string(),
        None => "latest".to_string(),
    }
}

/// Parses a CPU quantity (`500m`, `1`, `1.5`, `250u`) into cores.
pub fn cpu_cores(q: &str) -> Option<f64> {
    let q = q.trim();
    let (num, scale) = if let Some(n) = q.strip_suffix('m') {
        (n, 1e-3)
    } else if let Some(n) = q.strip_suffix('u') {
        (n, 1e-6)
    } else if let Some(n) = q.strip_suffix('n') {
        (n, 1e-9)
    } else {
        (q, 1.0)
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v * scale)
}

fn pod_info(pod: &Value) -> PodInfo<'_> {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let version = containers
        .first()
        .and_then(|c| str_at(c, "/image"))
        .map(image_tag)
        .unwrap_or_default();
    let cpu = containers
        .iter()
        .filter_map(|c| c.pointer("/resources/limits/cpu"))
        .filter_map(|q| match q {
            Value::String(s) => cpu_cores(s),
            Value::Number(n) => n.as_f64(),
            _ => None,
        })
        .sum::<f64>();
    PodInfo {
        name: name_of(pod),
        ready: pod_is_ready(pod),
        version,
        // A pod without a CPU limit is modelled as one core, so load maths never divides by 0.
        cpu: if cpu > 0.0 { cpu } else { 1.0 },
        labels: labels_of(pod),
    }
}

/// Most common version among the ready pods (all pods when none is ready); ties go to the
/// greatest string so the answer is stable between recomputations.
fn dominant_version(pods: &[&PodInfo<'_>]) -> String {
    let ready: Vec<&&PodInfo<'_>> = pods.iter().filter(|p| p.ready).collect();
    let pool: Vec<&PodInfo<'_>> = if ready.is_empty() {
        pods.to_vec()
    } else {
        ready.into_iter().copied().collect()
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in pool {
        *counts.entry(p.version.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)))
        .map(|(v, _)| v.to_string())
        .unwrap_or_default()
}

/// A Service that a traffic object sends a relative share of requests to.
#[derive(Debug, PartialEq)]
struct Backend<'a> {
    namespace: &'a str,
    service: &'a str,
    weight: u32,
}

fn weight_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The weighted Service backends of every traffic object (HTTPRoute, VirtualService, Ingress,
/// TrafficSplit, told apart by `kind`). Shapes that do not parse send nothing.
fn traffic_backends(objects: &[Value]) -> Vec<Backend<'_>> {
    let mut out = Vec::new();
    for obj in objects {
        match str_at(obj, "/kind") {
            Some("HTTPRoute") => http_route_backends(obj, &mut out),
            Some("VirtualService") => virtual_service_backends(obj, &mut out),
            Some("Ingress") => ingress_backends(obj, objects, &mut out),
            Some("TrafficSplit") => traffic_split_backends(obj, &mut out),
            _ => {}
        }
    }
    out
}

/// Gateway API: every Service backendRef of every rule; an omitted weight is 1.
fn http_route_backends<'a>(route: &'a Value, out: &mut Vec<Backend<'a>>) {
    let ns = namespace_of(route);
    let rules = route.pointer("/spec/rules").and_then(Value::as_array);
    for rule in rules.into_iter().flatten() {
        let refs = rule.get("backendRefs").and_then(Value::as_array);
        for backend in refs.into_iter().flatten() {
            let kind = str_at(backend, "/kind").unwrap_or("Service");
            let group = str_at(backend, "/group").unwrap_or("");
            if kind != "Service" || !group.is_empty() {
                continue;
            }
            let Some(service) = str_at(backend, "/name") else {
                continue;
            };
            out.push(Backend {
                namespace: str_at(backend, "/namespace").unwrap_or(ns),
                service,
                weight: backend
                    .get("weight")
                    .and_then(Value::as_u64)
                    .map_or(1, weight_u32),
            });
        }
    }
}

/// `checkout`, `checkout.shop`, `checkout.shop.svc`, `checkout.shop.svc.cluster.local` →
/// (namespace, Service); other hosts are outside the cluster.
fn service_of_host<'a>(host: &'a str, ns: &'a str) -> Option<(&'a str, &'a str)> {
    let mut parts = host.splitn(3, '.');
    let service = parts.next().filter(|s| !s.is_empty())?;
    let Some(host_ns) = parts.next() else {
        return Some((ns, service));
    };
    matches!(parts.next(), None | Some("svc") | Some("svc.cluster.local"))
        .then_some((host_ns, service))
}

/// Istio: every destination of every http route; a lone destination's omitted weight is 100,
/// otherwise 0.
fn virtual_service_backends<'a>(vs: &'a Value, out: &mut Vec<Backend<'a>>) {
    let ns = namespace_of(vs);
    let http = vs.pointer("/spec/http").and_then(Value::as_array);
    for entry in http.into_iter().flatten() {
        let Some(routes) = entry.get("route").and_then(Value::as_array) else {
            continue;
        };
        for route in routes {
            let Some((namespace, service)) =
                str_at(route, "/destination/host").and_then(|h| service_of_host(h, ns))
            else {
                continue;
            };
            let default = if routes.len() == 1 { 100 } else { 0 };
            out.push(Backend {
                namespace,
                service,
                weight: route
                    .get("weight")
                    .and_then(Value::as_u64)
                    .map_or(default, weight_u32),
            });
        }
    }
}

const NGINX_CANARY: &str = "nginx.ingress.kubernetes.io/canary";

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Canary percent of an ingress-nginx canary Ingress: `canary-weight` over
/// `canary-weight-total` (100 when absent); unreadable annotations count as 0.
fn nginx_canary_percent(ingress: &Value) -> u32 {
    let number = |key: &str, default: u64| {
        annotation(ingress, &format!("{NGINX_CANARY}-{key}"))
            .map_or(Some(default), |s| s.trim().parse::<u64>().ok())
    };
    match (number("weight", 0), number("weight-total", 100)) {
        (Some(w), Some(total)) if total > 0 => {
            weight_u32((w.min(total) as f64 * 100.0 / total as f64).round() as u64)
        }
        _ => 0,
    }
}

fn ingress_hosts(ingress: &Value) -> Vec<&str> {
    let rules = ingress.pointer("/spec/rules").and_then(Value::as_array);
    let hosts: Vec<&str> = rules
        .into_iter()
        .flatten()
        .map(|r| str_at(r, "/host").unwrap_or(""))
        .collect();
    if hosts.is_empty() { vec![""] } else { hosts }
}

/// ingress-nginx: a canary Ingress (`canary: "true"`) sends its percent to its Services; a
/// primary Ingress sends the rest to its own, the rest being 100 minus the percent of a canary
/// Ingress in its namespace that shares a host with it.
fn ingress_backends<'a>(ingress: &'a Value, all: &'a [Value], out: &mut Vec<Backend<'a>>) {
    let ns = namespace_of(ingress);
    let is_canary = |i: &Value| annotation(i, NGINX_CANARY) == Some("true");
    let weight = if is_canary(ingress) {
        nginx_canary_percent(ingress)
    } else {
        let hosts = ingress_hosts(ingress);
        let canary = all
            .iter()
            .filter(|o| str_at(o, "/kind") == Some("Ingress") && namespace_of(o) == ns)
            .filter(|o| is_canary(o) && ingress_hosts(o).iter().any(|h| hosts.contains(h)))
            .map(nginx_canary_percent)
            .max()
            .unwrap_or(0);
        100u32.saturating_sub(canary)
    };
    let default = ingress.pointer("/spec/defaultBackend/service/name");
    let paths = ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.pointer("/http/paths").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.pointer("/backend/service/name"));
    let mut seen: Vec<&str> = Vec::new();
    for service in default.into_iter().chain(paths).filter_map(Value::as_str) {
        if !seen.contains(&service) {
            seen.push(service);
            out.push(Backend {
                namespace: ns,
                service,
                weight,
            });
        }
    }
}

/// SMI: every backend Service with its weight (0 when absent).
fn traffic_split_backends<'a>(split: &'a Value, out: &mut Vec<Backend<'a>>) {
    let ns = namespace_of(split);
    let backends = split.pointer("/spec/backends").and_then(Value::as_array);
    for b in backends.into_iter().flatten() {
        if let Some(service) = str_at(b, "/service") {
            out.push(Backend {
                namespace: ns,
                service,
                weight: b
                    .get("weight")
                    .and_then(Value::as_u64)
                    .map_or(0, weight_u32),
            });
        }
    }
}

/// `routes` are the traffic objects (HTTPRoutes, VirtualServices, Ingresses, TrafficSplits).
pub fn compute(pods: &[Value], services: &[Value], routes: &[Value]) -> TrafficSnapshot {
    // (namespace, app) → track → pods
    let mut apps: BTreeMap<(String, String), BTreeMap<String, Vec<PodInfo<'_>>>> = BTreeMap::new();
    for pod in pods {
        let info = pod_info(pod);
        let Some(app) = info.labels.get("app").cloned() else {
            continue;
        };
        let track = info
            .labels
            .get("track")
            .cloned()
            .unwrap_or_else(|| "stable".into());
        apps.entry((namespace_of(pod).to_string(), app))
            .or_default()
            .entry(track)
            .or_default()
            .push(info);
    }

    let backends = traffic_backends(routes);
    let mut out = Vec::new();
    for ((ns, app), tracks) in &apps {
        // Weights per track, from every traffic backend whose Service selects this track's pods.
        let mut routed: BTreeMap<&str, u32> = BTreeMap::new();
        let mut any_route = false;
        for backend in &backends {
            if backend.namespace != ns {
                continue;
            }
            let Some(svc) = services
                .iter()
                .find(|s| namespace_of(s) == backend.namespace && name_of(s) == backend.service)
            else {
                continue;
            };
            let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
                continue;
            };
            for (track, members) in tracks {
                if members.iter().any(|p| map_selects(selector, &p.labels)) {
                    any_route = true;
                    let slot = routed.entry(track.as_str()).or_default();
                    *slot = slot.saturating_add(backend.weight);
                }
            }
        }
        let mut track_out = Vec::new();
        for (track, members) in tracks {
            let refs: Vec<&PodInfo<'_>> = members.iter().collect();
            let mut ready_pods: Vec<String> = members
                .iter()
                .filter(|p| p.ready)
                .map(|p| p.name.to_string())
                .collect();
            ready_pods.sort();
            let weight = if any_route {
                routed.get(track.as_str()).copied().unwrap_or(0)
            } else {
                u32::try_from(ready_pods.len()).unwrap_or(u32::MAX)
            };
            track_out.push(TrackTraffic {
                track: track.clone(),
                version: dominant_version(&refs),
                weight,
                ready_pods,
                cpu_limit_cores: members.first().map(|p| p.cpu).unwrap_or(1.0),
            });
        }
        out.push(ServiceTraffic {
            namespace: ns.clone(),
            service: app.clone(),
            tracks: track_out,
        });
    }
    TrafficSnapshot { services: out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, track: &str, image: &str, ready: bool) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "checkout", "track": track}},
            "spec": {"containers": [{"name": "checkout", "image": image, "resources": {"limits": {"cpu": "500m"}}}]},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        })
    }

    fn svc(name: &str, track: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "shop"}, "spec": {"selector": {"app": "checkout", "track": track}}})
    }

    #[test]
    fn without_a_route_weights_are_ready_replica_counts() {
        let pods = [
            pod("a", "stable", "r/checkout:2.3.1", true),
            pod("b", "stable", "r/checkout:2.3.1", true),
            pod("c", "canary", "r/checkout:2.4.0", false),
        ];
        let snap = compute(&pods, &[], &[]);
        let tracks = &snap.services[0].tracks;
        assert_eq!(tracks[0].track, "canary");
        assert_eq!(tracks[0].weight, 0);
        assert_eq!(tracks[0].version, "2.4.0");
        assert_eq!(tracks[1].weight, 2);
        assert_eq!(tracks[1].ready_pods, vec!["a", "b"]);
        assert!((tracks[1].cpu_limit_cores - 0.5).abs() < 1e-9);
    }

    #[test]
    fn route_weights_apply_and_a_missing_weight_counts_as_one() {
        let pods = [
            pod("a", "stable", "r/checkout:2.3.1", true),
            pod("c", "canary", "r:5000/checkout:2.4.0", true),
        ];
        let services = [svc("checkout", "stable"), svc("checkout-canary", "canary")];
        let route = json!({"kind": "HTTPRoute", "metadata": {"name": "checkout", "namespace": "shop"}, "spec": {"rules": [{"backendRefs": [
            {"name": "checkout", "port": 80, "weight": 90}, {"name": "checkout-canary", "port": 80}]}]}});
        let snap = compute(&pods, &services, &[route]);
        let tracks = &snap.services[0].tracks;
        assert_eq!((tracks[0].track.as_str(), tracks[0].weight), ("canary", 1));
        assert_eq!((tracks[1].track.as_str(), tracks[1].weight), ("stable", 90));
        assert_eq!(tracks[0].version, "2.4.0");
    }

    /// (track, weight) pairs of the one service in `snap`.
    fn weights(snap: &TrafficSnapshot) -> Vec<(String, u32)> {
        snap.services[0]
            .tracks
            .iter()
            .map(|t| (t.track.clone(), t.weight))
            .collect()
    }

    fn two_tracks() -> ([Value; 3], [Value; 2]) {
        (
            [
                pod("a", "stable", "r/checkout:2.3.1", true),
                pod("b", "stable", "r/checkout:2.3.1", true),
                pod("c", "canary", "r/checkout:2.4.0", true),
            ],
            [svc("checkout", "stable"), svc("checkout-canary", "canary")],
        )
    }

    fn expect(canary: u32, stable: u32) -> Vec<(String, u32)> {
        vec![("canary".into(), canary), ("stable".into(), stable)]
    }

    #[test]
    fn virtual_service_weights_go_by_destination_host() {
        let (pods, services) = two_tracks();
        let vs = json!({"kind": "VirtualService", "metadata": {"name": "checkout", "namespace": "shop"}, "spec": {"http": [{"route": [
            {"destination": {"host": "checkout.shop.svc.cluster.local"}, "weight": 70},
            {"destination": {"host": "checkout-canary", "subset": "v2"}, "weight": 30},
            {"destination": {"host": "checkout.other"}, "weight": 5},
            {"destination": {"host": "example.com.au"}, "weight": 5}]}]}});
        assert_eq!(weights(&compute(&pods, &services, &[vs])), expect(30, 70));
        // A lone destination without a weight takes everything.
        let lone = json!({"kind": "VirtualService", "metadata": {"name": "checkout", "namespace": "shop"}, "spec": {"http": [{"route": [
            {"destination": {"host": "checkout-canary.shop"}}]}]}});
        assert_eq!(weights(&compute(&pods, &services, &[lone])), expect(100, 0));
    }

    fn ingress(name: &str, service: &str, annotations: Value) -> Value {
        json!({"kind": "Ingress", "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
            "spec": {"rules": [{"host": "checkout.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}})
    }

    #[test]
    fn nginx_canary_weight_goes_to_the_canary_service_and_the_rest_to_the_primary() {
        let (pods, services) = two_tracks();
        let primary = ingress("checkout", "checkout", json!({}));
        let canary = ingress(
            "checkout-canary",
            "checkout-canary",
            json!({NGINX_CANARY: "true", "nginx.ingress.kubernetes.io/canary-weight": "30"}),
        );
        let snap = compute(&pods, &services, &[primary.clone(), canary]);
        assert_eq!(weights(&snap), expect(30, 70));
        let per_mille = ingress(
            "checkout-canary",
            "checkout-canary",
            json!({NGINX_CANARY: "true", "nginx.ingress.kubernetes.io/canary-weight": "250",
                "nginx.ingress.kubernetes.io/canary-weight-total": "1000"}),
        );
        let snap = compute(&pods, &services, &[primary.clone(), per_mille]);
        assert_eq!(weights(&snap), expect(25, 75));
        // A canary Ingress for another host does not take the primary's traffic; a bad weight is 0.
        let mut elsewhere = ingress(
            "checkout-canary",
            "checkout-canary",
            json!({NGINX_CANARY: "true", "nginx.ingress.kubernetes.io/canary-weight": "junk"}),
        );
        elsewhere["spec"]["rules"][0]["host"] = json!("other.example.com");
        let snap = compute(&pods, &services, &[primary, elsewhere]);
        assert_eq!(weights(&snap), expect(0, 100));
    }

    #[test]
    fn traffic_split_weights_are_the_backends_weights() {
        let (pods, services) = two_tracks();
        let split = json!({"kind": "TrafficSplit", "metadata": {"name": "checkout", "namespace": "shop"}, "spec": {"service": "checkout",
            "backends": [{"service": "checkout", "weight": 900}, {"service": "checkout-canary", "weight": 100}, {"service": "gone", "weight": 5}]}});
        assert_eq!(
            weights(&compute(&pods, &services, &[split])),
            expect(100, 900)
        );
    }

    #[test]
    fn without_a_traffic_object_services_follow_ready_replicas() {
        // The replicas router: Services exist but nothing weights them.
        let (pods, services) = two_tracks();
        assert_eq!(weights(&compute(&pods, &services, &[])), expect(1, 2));
        // Objects of an unknown kind or shape route nothing.
        let junk = [
            json!({"kind": "Ingress", "metadata": {"namespace": "shop"}, "spec": 3}),
            json!({"kind": "VirtualService", "metadata": {"namespace": "shop"}, "spec": {"http": "x"}}),
            json!({"kind": "TrafficSplit", "metadata": {"namespace": "shop"}}),
            json!({"kind": "Other", "metadata": {"namespace": "shop"}}),
        ];
        assert_eq!(weights(&compute(&pods, &services, &junk)), expect(1, 2));
    }

    #[test]
    fn cpu_quantities_parse_to_cores() {
        assert_eq!(cpu_cores("500m"), Some(0.5));
        assert_eq!(cpu_cores("2"), Some(2.0));
        assert_eq!(cpu_cores("bogus"), None);
    }
}
