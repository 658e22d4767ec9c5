//! Field defaulting on create/update, as the real API server's defaulters fill specs in.
//! Mutates the incoming object only; it must not read or write the store.

use serde_json::{Value, json};

use super::resources::{self, ResourceDef};
use super::util::{obj_at, str_at};

fn default_field(map: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

fn default_containers(pod_spec: &mut Value) {
    for field in ["containers", "initContainers"] {
        let Some(list) = pod_spec.get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in list.iter_mut().filter_map(Value::as_object_mut) {
            let latest = c
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| super::snapshot::image_tag(i) == "latest");
            default_field(
                c,
                "imagePullPolicy",
                json!(if latest { "Always" } else { "IfNotPresent" }),
            );
            default_field(c, "terminationMessagePath", json!("/dev/termination-log"));
            default_field(c, "terminationMessagePolicy", json!("File"));
            default_field(c, "resources", json!({}));
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    default_field(p, "protocol", json!("TCP"));
                }
            }
            if let Some(probe) = c.get_mut("readinessProbe").and_then(Value::as_object_mut) {
                default_field(probe, "timeoutSeconds", json!(1));
                default_field(probe, "periodSeconds", json!(10));
                default_field(probe, "successThreshold", json!(1));
                default_field(probe, "failureThreshold", json!(3));
                if let Some(http) = probe.get_mut("httpGet").and_then(Value::as_object_mut) {
                    default_field(http, "scheme", json!("HTTP"));
                }
            }
        }
    }
    let Some(spec) = pod_spec.as_object_mut() else {
        return;
    };
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "schedulerName", json!("default-scheduler"));
}

fn default_selector_and_template(obj: &mut Value) {
    let template = obj_at(obj, &["spec", "template"]);
    let mut template_value = Value::Object(std::mem::take(template));
    let spec = obj_at(&mut template_value, &["spec"]);
    let mut spec_value = Value::Object(std::mem::take(spec));
    default_containers(&mut spec_value);
    obj_at(&mut template_value, &[]).insert("spec".into(), spec_value);
    obj_at(obj, &["spec"]).insert("template".into(), template_value);
}

/// Fills the defaults a real cluster would, so `-o yaml` looks like the real thing and
/// controllers can rely on fields being present.
pub fn apply(def: &'static ResourceDef, obj: &mut Value) {
    if def == &resources::DEPLOYMENTS {
        let spec = obj_at(obj, &["spec"]);
        default_field(spec, "replicas", json!(1));
        default_field(spec, "revisionHistoryLimit", json!(10));
        default_field(spec, "progressDeadlineSeconds", json!(600));
        default_field(
            spec,
            "strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        );
        if let Some(strategy) = spec.get_mut("strategy").and_then(Value::as_object_mut)
            && strategy.get("type").and_then(Value::as_str) != Some("Recreate")
        {
            default_field(strategy, "type", json!("RollingUpdate"));
            let ru = strategy.entry("rollingUpdate").or_insert(json!({}));
            if let Some(ru) = ru.as_object_mut() {
                default_field(ru, "maxSurge", json!("25%"));
                default_field(ru, "maxUnavailable", json!("25%"));
            }
        }
        default_selector_and_template(obj);
    } else if def == &resources::REPLICASETS {
        default_field(obj_at(obj, &["spec"]), "replicas", json!(1));
        default_selector_and_template(obj);
    } else if def == &resources::PODS {
        let mut spec = Value::Object(std::mem::take(obj_at(obj, &["spec"])));
        default_containers(&mut spec);
        if let Some(spec) = spec.as_object_mut() {
            default_field(spec, "enableServiceLinks", json!(true));
            default_field(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
            default_field(spec, "priority", json!(0));
            default_field(
                spec,
                "tolerations",
                json!([
                    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
                ]),
            );
        }
        obj_at(obj, &[]).insert("spec".into(), spec);
        default_field(obj_at(obj, &["status"]), "phase", json!("Pending"));
        let qos = qos_class(obj);
        default_field(obj_at(obj, &["status"]), "qosClass", json!(qos));
    } else if def == &resources::SERVICES {
        let spec = obj_at(obj, &["spec"]);
        default_field(spec, "type", json!("ClusterIP"));
        default_field(spec, "sessionAffinity", json!("None"));
        default_field(spec, "ipFamilies", json!(["IPv4"]));
        default_field(spec, "ipFamilyPolicy", json!("SingleStack"));
        default_field(spec, "internalTrafficPolicy", json!("Cluster"));
        if spec.get("clusterIP").is_none_or(Value::is_null) {
            // The service IP allocator hands out addresses from the service CIDR.
            let ip = format!(
                "10.96.{}.{}",
                rand::random_range(0..=255u8),
                rand::random_range(1..=254u8)
            );
            spec.insert("clusterIP".into(), json!(ip));
            spec.insert("clusterIPs".into(), json!([ip]));
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                default_field(p, "protocol", json!("TCP"));
                if let Some(port) = p.get("port").cloned() {
                    default_field(p, "targetPort", port);
                }
            }
        }
        default_field(obj_at(obj, &["status"]), "loadBalancer", json!({}));
    } else if def == &resources::NAMESPACES {
        let name = str_at(obj, "/metadata/name")
            .unwrap_or_default()
            .to_string();
        obj_at(obj, &["metadata", "labels"])
            .insert("kubernetes.io/metadata.name".into(), json!(name));
        default_field(obj_at(obj, &["spec"]), "finalizers", json!(["kubernetes"]));
        default_field(obj_at(obj, &["status"]), "phase", json!("Active"));
    } else if def == &resources::LEASES {
        // A real server decodes a Lease's MicroTimes and writes them back with six fractional
        // digits, whatever precision the client sent. Unreadable times are left for `validate`.
        let spec = obj_at(obj, &["spec"]);
        for field in ["acquireTime", "renewTime"] {
            if let Some(t) = spec
                .get(field)
                .and_then(Value::as_str)
                .and_then(super::util::parse_time)
            {
                spec.insert(field.into(), json!(super::util::format_micro_time(t)));
            }
        }
    }
}

/// QoS class from requests and limits, as the kubelet reports it.
fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let has = |c: &Value, what: &str| {
        c.pointer(&format!("/resources/{what}"))
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
    };
    if containers
        .iter()
        .all(|c| !has(c, "limits") && !has(c, "requests"))
    {
        "BestEffort"
    } else if containers.iter().all(|c| {
        let limits = c.pointer("/resources/limits");
        let requests = c.pointer("/resources/requests");
        limits.is_some_and(|l| l.get("cpu").is_some() && l.get("memory").is_some())
            && requests.is_none_or(|r| r == limits.unwrap_or(&Value::Null))
    }) {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_get_rolling_update_defaults() {
        let mut d = json!({"metadata": {"name": "x"}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "r/a:1"}]}}}});
        apply(&resources::DEPLOYMENTS, &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn defaulting_survives_objects_of_the_wrong_shape() {
        for def in resources::ALL {
            for body in [
                json!({"spec": 3}),
                json!({"spec": {"template": []}}),
                json!({"metadata": "x"}),
            ] {
                let mut b = body.clone();
                apply(def, &mut b);
            }
        }
    }
}
