//! Derives the [`TrafficSnapshot`] the request generator reads from pods, Services and HTTPRoutes.
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

    let mut out = Vec::new();
    for ((ns, app), tracks) in &apps {
        // Route weights per track, from every backendRef whose Service selects this track's pods.
        let mut routed: BTreeMap<&str, u32> = BTreeMap::new();
        let mut any_route = false;
        for route in routes.iter().filter(|r| namespace_of(r) == ns) {
            let rules = route.pointer("/spec/rules").and_then(Value::as_array);
            for rule in rules.into_iter().flatten() {
                let refs = rule.get("backendRefs").and_then(Value::as_array);
                for backend in refs.into_iter().flatten() {
                    let kind = str_at(backend, "/kind").unwrap_or("Service");
                    let group = str_at(backend, "/group").unwrap_or("");
                    if kind != "Service" || !group.is_empty() {
                        continue;
                    }
                    let backend_ns = str_at(backend, "/namespace").unwrap_or(ns);
                    let Some(svc_name) = str_at(backend, "/name") else {
                        continue;
                    };
                    let Some(svc) = services
                        .iter()
                        .find(|s| namespace_of(s) == backend_ns && name_of(s) == svc_name)
                    else {
                        continue;
                    };
                    let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object)
                    else {
                        continue;
                    };
                    // Gateway API: an omitted weight is 1.
                    let weight = backend
                        .get("weight")
                        .and_then(Value::as_u64)
                        .map(|w| u32::try_from(w).unwrap_or(u32::MAX))
                        .unwrap_or(1);
                    for (track, members) in tracks {
                        if backend_ns == ns
                            && members.iter().any(|p| map_selects(selector, &p.labels))
                        {
                            any_route = true;
                            let slot = routed.entry(track.as_str()).or_default();
                            *slot = slot.saturating_add(weight);
                        }
                    }
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
        let route = json!({"metadata": {"name": "checkout", "namespace": "shop"}, "spec": {"rules": [{"backendRefs": [
            {"name": "checkout", "port": 80, "weight": 90}, {"name": "checkout-canary", "port": 80}]}]}});
        let snap = compute(&pods, &services, &[route]);
        let tracks = &snap.services[0].tracks;
        assert_eq!((tracks[0].track.as_str(), tracks[0].weight), ("canary", 1));
        assert_eq!((tracks[1].track.as_str(), tracks[1].weight), ("stable", 90));
        assert_eq!(tracks[0].version, "2.4.0");
    }

    #[test]
    fn cpu_quantities_parse_to_cores() {
        assert_eq!(cpu_cores("500m"), Some(0.5));
        assert_eq!(cpu_cores("2"), Some(2.0));
        assert_eq!(cpu_cores("bogus"), None);
    }
}
