//! The fixed set of resource types the simulated API server serves, and their discovery documents.
//! Knows names, kinds and scopes only; it must not touch stored objects.

use serde_json::{Value, json};

/// One served resource type: everything discovery, routing and errors need to name it.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceDef {
    /// Empty for the core (legacy) group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Whether `spec` changes bump `metadata.generation` and PUT ignores `status`.
    pub has_status: bool,
    pub categories: &'static [&'static str],
}

#[derive(Debug, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    pub verbs: &'static [&'static str],
    pub kind: &'static str,
    /// Group/version of the subresource's kind when it differs from the parent's (Scale).
    pub group: &'static str,
    pub version: &'static str,
}

const STATUS_ONLY: &[Subresource] = &[];

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, as the real server names resources in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        (name == "status" && self.has_status) || self.subresources.iter().any(|s| s.name == name)
    }
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub const NAMESPACES: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    namespaced: false,
    short_names: &["ns"],
    subresources: STATUS_ONLY,
    has_status: true,
    categories: &[],
};
pub const NODES: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "nodes",
    singular: "node",
    kind: "Node",
    namespaced: false,
    short_names: &["no"],
    subresources: STATUS_ONLY,
    has_status: true,
    categories: &[],
};
const POD_LOG: &[Subresource] = &[Subresource {
    name: "log",
    verbs: &["get"],
    kind: "Pod",
    group: "",
    version: "",
}];
pub const PODS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    namespaced: true,
    short_names: &["po"],
    subresources: POD_LOG,
    has_status: true,
    categories: &["all"],
};
pub const SERVICES: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "services",
    singular: "service",
    kind: "Service",
    namespaced: true,
    short_names: &["svc"],
    subresources: STATUS_ONLY,
    has_status: true,
    categories: &["all"],
};
pub const CONFIGMAPS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "configmaps",
    singular: "configmap",
    kind: "ConfigMap",
    namespaced: true,
    short_names: &["cm"],
    subresources: STATUS_ONLY,
    has_status: false,
    categories: &[],
};
pub const EVENTS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    short_names: &["ev"],
    subresources: STATUS_ONLY,
    has_status: false,
    categories: &[],
};
const SCALE: &[Subresource] = &[Subresource {
    name: "scale",
    verbs: &["get", "patch", "update"],
    kind: "Scale",
    group: "autoscaling",
    version: "v1",
}];
pub const DEPLOYMENTS: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    plural: "deployments",
    singular: "deployment",
    kind: "Deployment",
    namespaced: true,
    short_names: &["deploy"],
    subresources: SCALE,
    has_status: true,
    categories: &["all"],
};
pub const REPLICASETS: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    plural: "replicasets",
    singular: "replicaset",
    kind: "ReplicaSet",
    namespaced: true,
    short_names: &["rs"],
    subresources: SCALE,
    has_status: true,
    categories: &["all"],
};
pub const HTTPROUTES: ResourceDef = ResourceDef {
    group: "gateway.networking.k8s.io",
    version: "v1",
    plural: "httproutes",
    singular: "httproute",
    kind: "HTTPRoute",
    namespaced: true,
    short_names: &[],
    subresources: STATUS_ONLY,
    has_status: true,
    categories: &["gateway-api"],
};

pub const INGRESSES: ResourceDef = ResourceDef {
    group: "networking.k8s.io",
    version: "v1",
    plural: "ingresses",
    singular: "ingress",
    kind: "Ingress",
    namespaced: true,
    short_names: &["ing"],
    subresources: STATUS_ONLY,
    has_status: true,
    categories: &[],
};
pub const VIRTUALSERVICES: ResourceDef = ResourceDef {
    group: "networking.istio.io",
    version: "v1",
    plural: "virtualservices",
    singular: "virtualservice",
    kind: "VirtualService",
    namespaced: true,
    short_names: &["vs"],
    subresources: STATUS_ONLY,
    has_status: true,
    categories: &["istio-io", "networking-istio-io"],
};
pub const TRAFFICSPLITS: ResourceDef = ResourceDef {
    group: "split.smi-spec.io",
    version: "v1alpha2",
    plural: "trafficsplits",
    singular: "trafficsplit",
    kind: "TrafficSplit",
    namespaced: true,
    short_names: &["ts"],
    subresources: STATUS_ONLY,
    has_status: false,
    categories: &["smi"],
};

/// Leases (`coordination.k8s.io/v1`): the API's lock object. `warroom::lease` keeps one per
/// plan and environment so that two runs of one plan never act at once.
pub const LEASES: ResourceDef = ResourceDef {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    singular: "lease",
    kind: "Lease",
    namespaced: true,
    short_names: &[],
    subresources: STATUS_ONLY,
    has_status: false,
    categories: &[],
};

/// Types served from CustomResourceDefinitions on a real cluster: no strategic merge patch,
/// lists replaced whole by merge patches.
pub fn is_custom(def: &ResourceDef) -> bool {
    [&HTTPROUTES, &VIRTUALSERVICES, &TRAFFICSPLITS].contains(&def)
}

/// The traffic objects the traffic snapshot follows.
pub const TRAFFIC_OBJECTS: [&ResourceDef; 4] =
    [&HTTPROUTES, &VIRTUALSERVICES, &INGRESSES, &TRAFFICSPLITS];

pub static ALL: &[&ResourceDef] = &[
    &NAMESPACES,
    &NODES,
    &PODS,
    &SERVICES,
    &CONFIGMAPS,
    &EVENTS,
    &DEPLOYMENTS,
    &REPLICASETS,
    &HTTPROUTES,
    &INGRESSES,
    &VIRTUALSERVICES,
    &TRAFFICSPLITS,
    &LEASES,
];

/// Groups in the order `/apis` lists them (built-in groups before CRD groups, as a real server
/// does); the core group is served under `/api`.
const GROUPS: &[&str] = &[
    "apps",
    super::review::GROUP,
    "networking.k8s.io",
    "coordination.k8s.io",
    "gateway.networking.k8s.io",
    "networking.istio.io",
    "split.smi-spec.io",
];

pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    ALL.iter()
        .copied()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
}

pub fn group_version_served(group: &str, version: &str) -> bool {
    ALL.iter().any(|d| d.group == group && d.version == version)
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_doc(group: &str) -> Value {
    // One version per group here; it is that of the group's resources.
    let version = ALL
        .iter()
        .find(|d| d.group == group)
        .map_or("v1", |d| d.version);
    let gv = format!("{group}/{version}");
    json!({
        "name": group,
        "versions": [{"groupVersion": gv, "version": version}],
        "preferredVersion": {"groupVersion": gv, "version": version},
    })
}

pub fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUPS.iter().map(|g| group_doc(g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(group: &str) -> Option<Value> {
    GROUPS.contains(&group).then(|| {
        let mut doc = group_doc(group);
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("kind".into(), json!("APIGroup"));
            obj.insert("apiVersion".into(), json!("v1"));
        }
        doc
    })
}

pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    if group == super::review::GROUP && version == super::review::VERSION {
        return Some(super::review::api_resource_list());
    }
    if !group_version_served(group, version) {
        return None;
    }
    let mut resources = Vec::new();
    for def in ALL
        .iter()
        .filter(|d| d.group == group && d.version == version)
    {
        let mut main = json!({
            "name": def.plural,
            "singularName": def.singular,
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": VERBS,
        });
        if let Some(obj) = main.as_object_mut() {
            if !def.short_names.is_empty() {
                obj.insert("shortNames".into(), json!(def.short_names));
            }
            if !def.categories.is_empty() {
                obj.insert("categories".into(), json!(def.categories));
            }
        }
        resources.push(main);
        if def.has_status {
            resources.push(json!({
                "name": format!("{}/status", def.plural),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": def.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        for sub in def.subresources {
            let mut doc = json!({
                "name": format!("{}/{}", def.plural, sub.name),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": sub.kind,
                "verbs": sub.verbs,
            });
            if !sub.version.is_empty()
                && let Some(m) = doc.as_object_mut()
            {
                m.insert("group".into(), json!(sub.group));
                m.insert("version".into(), json!(sub.version));
            }
            resources.push(doc);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.1",
        "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
        "gitTreeState": "clean",
        "buildDate": "2025-05-15T08:19:08Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}
