//! Server-side printing: `meta.k8s.io/v1` Table responses with the columns `kubectl get` shows.
//! Reads objects only; it must not touch the store.

use serde_json::{Value, json};

use super::resources::ResourceDef;
use super::util::{age_of, name_of, str_at};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(
    name: &'static str,
    ty: &'static str,
    priority: u8,
    description: &'static str,
) -> Column {
    Column {
        name,
        ty,
        format: "",
        priority,
        description,
    }
}

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    priority: 0,
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
};
const AGE: Column = col(
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
);

/// The wide columns Deployments and ReplicaSets share.
const CONTAINERS: Column = col(
    "Containers",
    "string",
    1,
    "Names of each container in the template.",
);
const IMAGES: Column = col(
    "Images",
    "string",
    1,
    "Images referenced by each container in the template.",
);

fn columns(def: &ResourceDef) -> Vec<Column> {
    match def.plural {
        "pods" => vec![
            NAME,
            col(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            col(
                "IP",
                "string",
                1,
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            col(
                "Node",
                "string",
                1,
                "NodeName is a request to schedule this pod onto a specific node.",
            ),
            col(
                "Nominated Node",
                "string",
                1,
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
            ),
            col(
                "Readiness Gates",
                "string",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        "deployments" => vec![
            NAME,
            col("Ready", "string", 0, "Number of the pod with ready state"),
            col(
                "Up-to-date",
                "string",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            col(
                "Available",
                "string",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            col(
                "Selector",
                "string",
                1,
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ],
        "replicasets" => vec![
            NAME,
            col(
                "Desired",
                "integer",
                0,
                "Replicas is the number of desired replicas.",
            ),
            col(
                "Current",
                "integer",
                0,
                "Replicas is the most recently observed number of replicas.",
            ),
            col(
                "Ready",
                "integer",
                0,
                "The number of ready replicas for this replica set.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            col(
                "Selector",
                "string",
                1,
                "Selector is a label query over pods that should match the replica count.",
            ),
        ],
        "services" => vec![
            NAME,
            col(
                "Type",
                "string",
                0,
                "Type determines how the Service is exposed.",
            ),
            col(
                "Cluster-IP",
                "string",
                0,
                "clusterIP is the IP address of the service and is usually assigned randomly.",
            ),
            col(
                "External-IP",
                "string",
                0,
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            col(
                "Port(s)",
                "string",
                0,
                "The list of ports that are exposed by this service.",
            ),
            AGE,
            col(
                "Selector",
                "string",
                1,
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ],
        "nodes" => vec![
            NAME,
            col("Status", "string", 0, "The status of the node"),
            col("Roles", "string", 0, "The roles of the node"),
            AGE,
            col(
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
            col(
                "Internal-IP",
                "string",
                1,
                "List of addresses reachable to the node. Queried from cloud provider, if available.",
            ),
            col(
                "External-IP",
                "string",
                1,
                "List of addresses reachable to the node. Queried from cloud provider, if available.",
            ),
            col(
                "OS-Image",
                "string",
                1,
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            ),
            col(
                "Kernel-Version",
                "string",
                1,
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            ),
            col(
                "Container-Runtime",
                "string",
                1,
                "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            ),
        ],
        "configmaps" => vec![
            NAME,
            col(
                "Data",
                "integer",
                0,
                "Data contains the configuration data.",
            ),
            AGE,
        ],
        "namespaces" => vec![
            NAME,
            col("Status", "string", 0, "The status of the namespace"),
            AGE,
        ],
        "events" => vec![
            col("Last Seen", "string", 0, "Time when last event occurred"),
            col(
                "Type",
                "string",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            col(
                "Reason",
                "string",
                0,
                "This should be a short, machine understandable string that gives the reason for this event being generated.",
            ),
            col("Object", "string", 0, "The object this Event is about."),
            col(
                "Subobject",
                "string",
                1,
                "The field of the object this Event is about.",
            ),
            col(
                "Source",
                "string",
                1,
                "The component reporting this event. Should be a short machine understandable string.",
            ),
            col(
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
            col(
                "First Seen",
                "string",
                1,
                "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
            ),
            col(
                "Count",
                "string",
                1,
                "The number of times this event has occurred.",
            ),
            Column {
                priority: 1,
                ..NAME
            },
        ],
        "httproutes" => vec![NAME, col("Hostnames", "string", 0, ""), CRD_AGE],
        "ingresses" => vec![
            NAME,
            col(
                "Class",
                "string",
                0,
                "ingressClassName is the name of an IngressClass cluster resource.",
            ),
            col(
                "Hosts",
                "string",
                0,
                "Hosts that incoming requests are matched against.",
            ),
            col(
                "Address",
                "string",
                0,
                "Address is a list containing ingress points for the load-balancer.",
            ),
            col(
                "Ports",
                "string",
                0,
                "Ports of TLS configurations that open.",
            ),
            AGE,
        ],
        "virtualservices" => vec![
            NAME,
            col(
                "Gateways",
                "string",
                0,
                "The names of gateways and sidecars that should apply these routes",
            ),
            col(
                "Hosts",
                "string",
                0,
                "The destination hosts to which traffic is being sent",
            ),
            CRD_AGE,
        ],
        "trafficsplits" => vec![
            NAME,
            col("Service", "string", 0, "The apex service of this split."),
            CRD_AGE,
        ],
        "leases" => vec![
            NAME,
            col(
                "Holder",
                "string",
                0,
                "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
            ),
            AGE,
        ],
        _ => vec![NAME, AGE],
    }
}

/// The Age column CRDs print (from `.metadata.creationTimestamp`).
const CRD_AGE: Column = Column {
    name: "Age",
    ty: "date",
    format: "",
    priority: 0,
    description: "",
};

/// kubectl's Hosts cell of an Ingress: up to three hosts, `*` when none.
fn ingress_hosts(obj: &Value) -> String {
    let hosts: Vec<&str> = obj
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| str_at(r, "/host"))
        .filter(|h| !h.is_empty())
        .collect();
    match hosts.len() {
        0 => "*".into(),
        1..=3 => hosts.join(","),
        n => format!("{} + {} more...", hosts[..3].join(","), n - 3),
    }
}

fn ingress_address(obj: &Value) -> String {
    obj.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| str_at(i, "/ip").or_else(|| str_at(i, "/hostname")))
        .collect::<Vec<_>>()
        .join(",")
}

fn list_or_none(items: Vec<String>) -> String {
    if items.is_empty() {
        "<none>".into()
    } else {
        items.join(",")
    }
}

fn str_or_none(v: Option<&str>) -> String {
    match v {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".into(),
    }
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn created(obj: &Value) -> String {
    age_of(str_at(obj, "/metadata/creationTimestamp"))
}

fn selector_string(map: Option<&Value>) -> String {
    let pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    list_or_none(pairs)
}

fn containers_and_images(obj: &Value, pointer: &str) -> (String, String) {
    let cs = obj
        .pointer(pointer)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names = cs
        .iter()
        .filter_map(|c| str_at(c, "/name"))
        .map(str::to_string)
        .collect();
    let images = cs
        .iter()
        .filter_map(|c| str_at(c, "/image"))
        .map(str::to_string)
        .collect();
    (list_or_none(names), list_or_none(images))
}

/// The STATUS column of `kubectl get pods`, following the kubelet-reported state in the same
/// order of precedence the real printer uses.
pub fn pod_status(pod: &Value) -> String {
    let mut reason = str_at(pod, "/status/reason")
        .or_else(|| str_at(pod, "/status/phase"))
        .unwrap_or("Pending")
        .to_string();
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut has_running = false;
    for cs in statuses.iter().rev() {
        if let Some(r) = str_at(cs, "/state/waiting/reason").filter(|r| !r.is_empty()) {
            reason = r.to_string();
        } else if let Some(r) = str_at(cs, "/state/terminated/reason").filter(|r| !r.is_empty()) {
            reason = r.to_string();
        } else if cs.pointer("/state/terminated").is_some() {
            reason = match cs
                .pointer("/state/terminated/signal")
                .and_then(Value::as_i64)
            {
                Some(sig) if sig != 0 => format!("Signal:{sig}"),
                _ => format!("ExitCode:{}", int(cs, "/state/terminated/exitCode")),
            };
        } else if cs.get("ready").and_then(Value::as_bool) == Some(true)
            && cs.pointer("/state/running").is_some()
        {
            has_running = true;
        }
    }
    if reason == "Completed" && has_running {
        reason = "Running".into();
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if str_at(pod, "/status/reason") == Some("NodeLost") {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn pod_restarts(pod: &Value) -> String {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let restarts: i64 = statuses.iter().map(|c| int(c, "/restartCount")).sum();
    let last = statuses
        .iter()
        .filter_map(|c| str_at(c, "/lastState/terminated/finishedAt"))
        .max()
        .map(|t| age_of(Some(t)));
    match last {
        Some(ago) if restarts > 0 => format!("{restarts} ({ago} ago)"),
        _ => restarts.to_string(),
    }
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = json!(name_of(obj));
    match def.plural {
        "pods" => {
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |cs| {
                    cs.iter()
                        .filter(|c| c.get("ready") == Some(&json!(true)))
                        .count()
                });
            let gates = obj
                .pointer("/spec/readinessGates")
                .and_then(Value::as_array)
                .filter(|g| !g.is_empty())
                .map(|g| {
                    let conds = obj.pointer("/status/conditions").and_then(Value::as_array);
                    let true_count = g
                        .iter()
                        .filter(|gate| {
                            conds.into_iter().flatten().any(|c| {
                                c.get("type") == gate.get("conditionType")
                                    && str_at(c, "/status") == Some("True")
                            })
                        })
                        .count();
                    format!("{true_count}/{}", g.len())
                })
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(obj)),
                json!(pod_restarts(obj)),
                json!(created(obj)),
                json!(str_or_none(str_at(obj, "/status/podIP"))),
                json!(str_or_none(str_at(obj, "/spec/nodeName"))),
                json!(str_or_none(str_at(obj, "/status/nominatedNodeName"))),
                json!(gates),
            ]
        }
        "deployments" => {
            let (containers, images) = containers_and_images(obj, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    int(obj, "/spec/replicas")
                )),
                json!(int(obj, "/status/updatedReplicas")),
                json!(int(obj, "/status/availableReplicas")),
                json!(created(obj)),
                json!(containers),
                json!(images),
                json!(selector_string(obj.pointer("/spec/selector/matchLabels"))),
            ]
        }
        "replicasets" => {
            let (containers, images) = containers_and_images(obj, "/spec/template/spec/containers");
            vec![
                name,
                json!(int(obj, "/spec/replicas")),
                json!(int(obj, "/status/replicas")),
                json!(int(obj, "/status/readyReplicas")),
                json!(created(obj)),
                json!(containers),
                json!(images),
                json!(selector_string(obj.pointer("/spec/selector/matchLabels"))),
            ]
        }
        "services" => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let port = int(p, "/port");
                    let proto = str_at(p, "/protocol").unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(np) => format!("{port}:{np}/{proto}"),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect();
            let external: Vec<String> = obj
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            vec![
                name,
                json!(str_at(obj, "/spec/type").unwrap_or("ClusterIP")),
                json!(str_or_none(str_at(obj, "/spec/clusterIP"))),
                json!(list_or_none(external)),
                json!(list_or_none(ports)),
                json!(created(obj)),
                json!(selector_string(obj.pointer("/spec/selector"))),
            ]
        }
        "nodes" => {
            let ready = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|c| str_at(c, "/type") == Some("Ready"))
                .and_then(|c| str_at(c, "/status"));
            let mut status = match ready {
                Some("True") => "Ready".to_string(),
                _ => "NotReady".to_string(),
            };
            if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| {
                    k.strip_prefix("node-role.kubernetes.io/")
                        .map(str::to_string)
                })
                .collect();
            let address = |ty: &str| {
                obj.pointer("/status/addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|a| str_at(a, "/type") == Some(ty))
                    .and_then(|a| str_at(a, "/address"))
                    .map(str::to_string)
            };
            vec![
                name,
                json!(status),
                json!(list_or_none(roles)),
                json!(created(obj)),
                json!(str_at(obj, "/status/nodeInfo/kubeletVersion").unwrap_or_default()),
                json!(str_or_none(address("InternalIP").as_deref())),
                json!(str_or_none(address("ExternalIP").as_deref())),
                json!(str_or_none(str_at(obj, "/status/nodeInfo/osImage"))),
                json!(str_or_none(str_at(obj, "/status/nodeInfo/kernelVersion"))),
                json!(str_or_none(str_at(
                    obj,
                    "/status/nodeInfo/containerRuntimeVersion"
                ))),
            ]
        }
        "configmaps" => {
            let n = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + obj
                    .get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(n), json!(created(obj))]
        }
        "namespaces" => vec![
            name,
            json!(str_at(obj, "/status/phase").unwrap_or("Active")),
            json!(created(obj)),
        ],
        "events" => {
            let last = str_at(obj, "/lastTimestamp")
                .or_else(|| str_at(obj, "/eventTime"))
                .or_else(|| str_at(obj, "/metadata/creationTimestamp"));
            let first = str_at(obj, "/firstTimestamp")
                .or_else(|| str_at(obj, "/eventTime"))
                .or_else(|| str_at(obj, "/metadata/creationTimestamp"));
            let kind = str_at(obj, "/involvedObject/kind")
                .unwrap_or_default()
                .to_lowercase();
            let source = match (
                str_at(obj, "/source/component"),
                str_at(obj, "/source/host"),
            ) {
                (Some(c), Some(h)) => format!("{c}, {h}"),
                (Some(c), None) => c.to_string(),
                _ => str_or_none(str_at(obj, "/reportingComponent")),
            };
            vec![
                json!(age_of(last)),
                json!(str_at(obj, "/type").unwrap_or_default()),
                json!(str_at(obj, "/reason").unwrap_or_default()),
                json!(format!(
                    "{kind}/{}",
                    str_at(obj, "/involvedObject/name").unwrap_or_default()
                )),
                json!(str_at(obj, "/involvedObject/fieldPath").unwrap_or_default()),
                json!(source),
                json!(str_at(obj, "/message").unwrap_or_default()),
                json!(age_of(first)),
                json!(int(obj, "/count").to_string()),
                name,
            ]
        }
        "httproutes" => vec![
            name,
            // CRD printer columns print JSONPath results of lists as JSON.
            obj.pointer("/spec/hostnames")
                .map(|h| json!(h.to_string()))
                .unwrap_or(Value::Null),
            json!(created(obj)),
        ],
        "ingresses" => {
            let tls = obj
                .pointer("/spec/tls")
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty());
            vec![
                name,
                json!(str_or_none(str_at(obj, "/spec/ingressClassName"))),
                json!(ingress_hosts(obj)),
                json!(ingress_address(obj)),
                json!(if tls { "80, 443" } else { "80" }),
                json!(created(obj)),
            ]
        }
        // CRD printer columns print JSONPath results of lists as JSON.
        "virtualservices" => vec![
            name,
            obj.pointer("/spec/gateways")
                .map(|g| json!(g.to_string()))
                .unwrap_or(Value::Null),
            obj.pointer("/spec/hosts")
                .map(|h| json!(h.to_string()))
                .unwrap_or(Value::Null),
            json!(created(obj)),
        ],
        "trafficsplits" => vec![
            name,
            str_at(obj, "/spec/service").map_or(Value::Null, |s| json!(s)),
            json!(created(obj)),
        ],
        // A released lease (no holder) prints an empty cell, as the real server's printer does.
        "leases" => vec![
            name,
            json!(str_at(obj, "/spec/holderIdentity").unwrap_or_default()),
            json!(created(obj)),
        ],
        _ => vec![name, json!(created(obj))],
    }
}

/// Renders objects as a Table. Watch events after the first omit the column definitions, as
/// the real server sends them.
pub fn render(
    def: &'static ResourceDef,
    objects: &[Value],
    rv: &str,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let cols: Vec<Value> = if with_columns {
        columns(def)
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.ty,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(def, o)});
            let object = match include {
                IncludeObject::None => None,
                IncludeObject::Metadata => Some(super::api::partial_metadata(o)),
                IncludeObject::Object => Some(o.clone()),
            };
            if let (Some(obj), Some(r)) = (object, row.as_object_mut()) {
                r.insert("object".into(), obj);
            }
            row
        })
        .collect();
    let mut table = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "rows": rows,
    });
    if with_columns && let Some(t) = table.as_object_mut() {
        t.insert("columnDefinitions".into(), json!(cols));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kube::resources;

    #[test]
    fn pod_status_column_follows_waiting_reasons_and_termination() {
        let creating = json!({"status": {"phase": "Pending", "containerStatuses": [
            {"ready": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(pod_status(&creating), "ContainerCreating");
        let running = json!({"status": {"phase": "Running", "containerStatuses": [
            {"ready": true, "state": {"running": {}}}]}});
        assert_eq!(pod_status(&running), "Running");
        let mut terminating = running.clone();
        terminating["metadata"] = json!({"deletionTimestamp": "2026-01-01T00:00:00Z"});
        assert_eq!(pod_status(&terminating), "Terminating");
    }

    #[test]
    fn every_row_has_one_cell_per_column() {
        for def in resources::ALL {
            let t = render(
                def,
                &[json!({"metadata": {"name": "x"}})],
                "1",
                IncludeObject::Metadata,
                true,
            );
            let ncols = t["columnDefinitions"].as_array().map_or(0, Vec::len);
            let ncells = t["rows"][0]["cells"].as_array().map_or(0, Vec::len);
            assert_eq!(ncols, ncells, "{}", def.plural);
        }
    }
}
