//! ConfigMaps as feature flags: set one key, snapshot a few ConfigMaps, and restore them
//! exactly (data, binaryData, labels and annotations: keys added since are removed, deleted
//! ConfigMaps are recreated).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{ActionError, Op};

fn op<'a>(verb: &'a str, namespace: &'a str, name: &'a str) -> Op<'a> {
    Op {
        verb,
        resource: "configmaps",
        kind: "configmap",
        namespace,
        name,
    }
}

/// `set_key`'s result: the value the key had before (`None`: it was not set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    pub previous: Option<String>,
}

/// Sets `data[key] = value` with a JSON merge patch of that key alone.
pub async fn set_key(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
    value: &str,
) -> Result<KeyChange, ActionError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let before = api
        .get(name)
        .await
        .map_err(|e| op("get", namespace, name).error(&e))?;
    let patch = json!({"data": {key: value}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| op("patch", namespace, name).error(&e))?;
    Ok(KeyChange {
        previous: before.data.and_then(|mut d| d.remove(key)),
    })
}

/// One ConfigMap as it was. Journaled in `snapshot` lines, so a resumed run restores what the
/// first one saw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigMapState {
    pub name: String,
    pub data: BTreeMap<String, String>,
    pub binary_data: BTreeMap<String, ByteString>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The resourceVersion read; a restore finds out from it whether anything changed since.
    pub resource_version: Option<String>,
}

/// Some ConfigMaps of one namespace as they were at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapSnapshot {
    pub namespace: String,
    pub items: Vec<ConfigMapState>,
}

/// Reads `names` in `namespace`; a missing ConfigMap is an error naming it.
pub async fn snapshot(
    client: &Client,
    namespace: &str,
    names: &[&str],
) -> Result<ConfigMapSnapshot, ActionError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut items = Vec::with_capacity(names.len());
    for name in names {
        let cm = api
            .get(name)
            .await
            .map_err(|e| op("get", namespace, name).error(&e))?;
        items.push(ConfigMapState {
            name: (*name).to_string(),
            data: cm.data.unwrap_or_default(),
            binary_data: cm.binary_data.unwrap_or_default(),
            labels: cm.metadata.labels.unwrap_or_default(),
            annotations: cm.metadata.annotations.unwrap_or_default(),
            resource_version: cm.metadata.resource_version,
        });
    }
    Ok(ConfigMapSnapshot {
        namespace: namespace.to_string(),
        items,
    })
}

/// What a restore did to one ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreChange {
    /// Already as in the snapshot; nothing written.
    Unchanged,
    /// Rewritten: keys whose value went back, keys added since and removed, keys deleted since
    /// and put back (data and binaryData alike); labels and annotations put back as they were
    /// (the keys that differed, each group sorted).
    Rewritten {
        changed: Vec<String>,
        removed: Vec<String>,
        readded: Vec<String>,
        labels: Vec<String>,
        annotations: Vec<String>,
    },
    /// Deleted since the snapshot, created again.
    Recreated,
}

/// The outcome for one ConfigMap; a failure on one does not stop the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub name: String,
    pub result: Result<RestoreChange, ActionError>,
}

/// How many times a restore re-reads and retries a ConfigMap that changed under it.
const CONFLICT_RETRIES: usize = 3;

/// Writes every ConfigMap of `snapshot` back exactly: data, binaryData, labels and
/// annotations replaced whole (an update with the resourceVersion just read, retried on
/// conflict), deleted ones recreated with their labels and annotations.
pub async fn restore(client: &Client, snapshot: &ConfigMapSnapshot) -> Vec<Restored> {
    let mut out = Vec::with_capacity(snapshot.items.len());
    for item in &snapshot.items {
        out.push(Restored {
            name: item.name.clone(),
            result: restore_one(client, &snapshot.namespace, item).await,
        });
    }
    out
}

fn diff<V: PartialEq>(
    want: &BTreeMap<String, V>,
    have: &BTreeMap<String, V>,
    changed: &mut BTreeSet<String>,
    removed: &mut BTreeSet<String>,
    readded: &mut BTreeSet<String>,
) {
    for (k, v) in want {
        match have.get(k) {
            None => {
                readded.insert(k.clone());
            }
            Some(now) if now != v => {
                changed.insert(k.clone());
            }
            Some(_) => {}
        }
    }
    for k in have.keys().filter(|k| !want.contains_key(*k)) {
        removed.insert(k.clone());
    }
}

/// The keys whose value differs between `want` and `have`, or that only one of them has.
fn differing(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> Vec<String> {
    let (mut changed, mut removed, mut readded) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    diff(want, have, &mut changed, &mut removed, &mut readded);
    changed.extend(removed);
    changed.extend(readded);
    changed.into_iter().collect()
}

fn none_if_empty<V>(m: &BTreeMap<String, V>) -> Option<BTreeMap<String, V>>
where
    V: Clone,
{
    (!m.is_empty()).then(|| m.clone())
}

async fn restore_one(
    client: &Client,
    namespace: &str,
    item: &ConfigMapState,
) -> Result<RestoreChange, ActionError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let name = item.name.as_str();
    let mut attempt = 0;
    loop {
        let current = api
            .get_opt(name)
            .await
            .map_err(|e| op("get", namespace, name).error(&e))?;
        let Some(mut current) = current else {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(namespace.to_string()),
                    labels: none_if_empty(&item.labels),
                    annotations: none_if_empty(&item.annotations),
                    ..ObjectMeta::default()
                },
                data: none_if_empty(&item.data),
                binary_data: none_if_empty(&item.binary_data),
                ..ConfigMap::default()
            };
            return match api.create(&PostParams::default(), &cm).await {
                Ok(_) => Ok(RestoreChange::Recreated),
                // Someone recreated it meanwhile: compare with theirs on the next round.
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    continue;
                }
                Err(e) => Err(op("create", namespace, name).error(&e)),
            };
        };
        if item.resource_version.is_some()
            && current.metadata.resource_version == item.resource_version
        {
            return Ok(RestoreChange::Unchanged);
        }
        let (mut changed, mut removed, mut readded) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let have_data = current.data.clone().unwrap_or_default();
        let have_binary = current.binary_data.clone().unwrap_or_default();
        diff(
            &item.data,
            &have_data,
            &mut changed,
            &mut removed,
            &mut readded,
        );
        diff(
            &item.binary_data,
            &have_binary,
            &mut changed,
            &mut removed,
            &mut readded,
        );
        let labels = differing(
            &item.labels,
            current.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
        );
        let annotations = differing(
            &item.annotations,
            current
                .metadata
                .annotations
                .as_ref()
                .unwrap_or(&BTreeMap::new()),
        );
        if changed.is_empty()
            && removed.is_empty()
            && readded.is_empty()
            && labels.is_empty()
            && annotations.is_empty()
        {
            return Ok(RestoreChange::Unchanged);
        }
        current.data = none_if_empty(&item.data);
        current.binary_data = none_if_empty(&item.binary_data);
        current.metadata.labels = none_if_empty(&item.labels);
        current.metadata.annotations = none_if_empty(&item.annotations);
        match api.replace(name, &PostParams::default(), &current).await {
            Ok(_) => {
                return Ok(RestoreChange::Rewritten {
                    changed: changed.into_iter().collect(),
                    removed: removed.into_iter().collect(),
                    readded: readded.into_iter().collect(),
                    labels,
                    annotations,
                });
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < CONFLICT_RETRIES => {
                attempt += 1;
            }
            Err(e) => return Err(op("update", namespace, name).error(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_sorts_keys_into_changed_removed_and_readded() {
        let want = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), "3".to_string()),
        ]);
        let have = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "20".to_string()),
            ("d".to_string(), "4".to_string()),
        ]);
        let (mut changed, mut removed, mut readded) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        diff(&want, &have, &mut changed, &mut removed, &mut readded);
        assert_eq!(changed, BTreeSet::from(["b".to_string()]));
        assert_eq!(removed, BTreeSet::from(["d".to_string()]));
        assert_eq!(readded, BTreeSet::from(["c".to_string()]));
    }

    #[test]
    fn differing_lists_every_key_that_is_not_as_wanted() {
        let want = BTreeMap::from([
            ("team".to_string(), "shop".to_string()),
            ("tier".to_string(), "web".to_string()),
        ]);
        let have = BTreeMap::from([
            ("team".to_string(), "ops".to_string()),
            ("extra".to_string(), "1".to_string()),
        ]);
        assert_eq!(differing(&want, &have), ["extra", "team", "tier"]);
        assert!(differing(&want, &want).is_empty());
    }
}
