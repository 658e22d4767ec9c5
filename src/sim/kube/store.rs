//! The object store: every object as JSON, the global resourceVersion, the event window and the
//! live fan-out to watches. It owns server-set metadata only; it must not default or validate specs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use super::error::ApiError;
use super::resources::{self, ResourceDef};
use super::snapshot;
use super::util::{self, obj_at};
use crate::sim::model::TrafficSnapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One committed change, as watches replay it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub def: &'static ResourceDef,
    pub namespace: String,
    pub kind: ChangeKind,
    pub object: Value,
    /// The object before a modification, so a filtered watch can tell an object leaving its
    /// selector (sent as DELETED) from one changing inside it.
    pub previous: Option<Value>,
}

type Key = (&'static str, String, String);

struct Inner {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    window: usize,
    /// Newest resourceVersion that has fallen out of `history`; watches from before it get 410.
    compacted: u64,
    /// A change the traffic snapshot does not reflect yet (large clusters only, see
    /// [`SNAPSHOT_EAGER_PODS`]).
    snapshot_dirty: bool,
}

/// Up to this many pods (a few demo apps) the traffic snapshot is recomputed on every relevant change; above it,
/// at most once per controller tick, so that bulk changes stay linear rather than quadratic.
pub const SNAPSHOT_EAGER_PODS: usize = 200;

pub struct Store {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Arc<Change>>,
    snapshot: watch::Sender<TrafficSnapshot>,
}

/// Where a watch starts: the changes to replay, and the live feed from just after them.
pub struct WatchStart {
    pub replay: Vec<Arc<Change>>,
    pub live: broadcast::Receiver<Arc<Change>>,
    pub rv: u64,
}

fn key(def: &ResourceDef, ns: &str, name: &str) -> Key {
    let ns = if def.namespaced { ns } else { "" };
    (def.plural, ns.to_string(), name.to_string())
}

fn rv_of(v: &Value) -> Option<u64> {
    util::str_at(v, "/metadata/resourceVersion").and_then(|s| s.parse().ok())
}

/// Objects equal except for server-maintained metadata: an update that changes nothing else
/// must not bump resourceVersion, or controllers would spin on their own writes.
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

impl Store {
    pub fn new(window: usize) -> Self {
        let (changes, _) = broadcast::channel(8192);
        let (snapshot, _) = watch::channel(TrafficSnapshot::default());
        Store {
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                rv: 1,
                history: VecDeque::new(),
                window: window.max(1),
                compacted: 0,
                snapshot_dirty: false,
            }),
            changes,
            snapshot,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written map (writes are single
        // inserts), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshots(&self) -> watch::Receiver<TrafficSnapshot> {
        self.snapshot.subscribe()
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, def: &'static ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&key(def, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))
    }

    /// Objects of one type, in one namespace or (`None`) all of them, with the list's version.
    pub fn list(&self, def: &'static ResourceDef, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        (Self::list_locked(&inner, def, ns), inner.rv)
    }

    fn list_locked(inner: &Inner, def: &'static ResourceDef, ns: Option<&str>) -> Vec<Value> {
        let start = (
            def.plural,
            ns.unwrap_or_default().to_string(),
            String::new(),
        );
        inner
            .objects
            .range(start..)
            .take_while(|((plural, n, _), _)| *plural == def.plural && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn create(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        self.create_maybe_dry(def, ns, obj, false)
    }

    /// Create, or (`dry_run`) everything a create does except storing and publishing it.
    pub fn create_maybe_dry(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        let mut inner = self.lock();
        let name = match util::str_at(&obj, "/metadata/name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match util::str_at(&obj, "/metadata/generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => format!("{prefix}{}", util::random_suffix(5)),
                None => {
                    return Err(ApiError::Invalid(format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        def.kind
                    )));
                }
            },
        };
        let k = key(def, ns, &name);
        if inner.objects.contains_key(&k) {
            return Err(ApiError::already_exists(def, &name));
        }
        if !dry_run {
            inner.rv += 1;
        }
        let rv = inner.rv;
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(def.api_version()));
            o.insert("kind".into(), json!(def.kind));
        }
        let meta = obj_at(&mut obj, &["metadata"]);
        meta.insert("name".into(), json!(name));
        if def.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(util::new_uid()));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(util::now_rfc3339()));
        // As on a real server, only the API groups' objects (Deployments, ReplicaSets, custom
        // resources) carry a generation; core objects such as ConfigMaps, and Leases, do not.
        if tracks_generation(def) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        meta.remove("deletionTimestamp");
        meta.remove("selfLink");
        if dry_run {
            meta.remove("resourceVersion");
            return Ok(obj);
        }
        inner.objects.insert(k, obj.clone());
        self.publish(&mut inner, def, ns, ChangeKind::Added, obj.clone(), None);
        Ok(obj)
    }

    /// Read-modify-write under the store lock, for controllers and patches: no lost updates.
    pub fn update_with<F>(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        f: F,
    ) -> Result<Value, ApiError>
    where
        F: FnOnce(&mut Value) -> Result<(), ApiError>,
    {
        self.modify(def, ns, name, f, false)
    }

    /// Read-modify-write that may be a dry run (`?dryRun=All`): everything but the commit.
    pub fn modify<F>(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        f: F,
        dry_run: bool,
    ) -> Result<Value, ApiError>
    where
        F: FnOnce(&mut Value) -> Result<(), ApiError>,
    {
        let mut inner = self.lock();
        let current = inner
            .objects
            .get(&key(def, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))?;
        let mut next = current.clone();
        f(&mut next)?;
        self.commit_replace(&mut inner, (def, ns, name), current, next, dry_run)
    }

    fn commit_replace(
        &self,
        inner: &mut Inner,
        (def, ns, name): (&'static ResourceDef, &str, &str),
        current: Value,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        if let Some(given) = util::str_at(&obj, "/metadata/name")
            && given != name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(def.api_version()));
            o.insert("kind".into(), json!(def.kind));
        }
        let mut generation = util::i64_at(&current, "/metadata/generation").unwrap_or(1);
        if current.get("spec") != obj.get("spec") {
            generation += 1;
        }
        // Identity and bookkeeping fields always come from the stored object.
        {
            let cur_meta = current.get("metadata").cloned().unwrap_or(json!({}));
            let meta = obj_at(&mut obj, &["metadata"]);
            meta.insert("name".into(), json!(name));
            if def.namespaced {
                meta.insert("namespace".into(), json!(ns));
            }
            for field in ["uid", "creationTimestamp", "resourceVersion"] {
                match cur_meta.get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            if tracks_generation(def) {
                meta.insert("generation".into(), json!(generation));
            } else {
                meta.remove("generation");
            }
            if let Some(ts) = cur_meta.get("deletionTimestamp") {
                meta.insert("deletionTimestamp".into(), ts.clone());
            }
        }
        if same_content(&current, &obj) {
            return Ok(current);
        }
        if dry_run {
            return Ok(obj);
        }
        inner.rv += 1;
        let rv = inner.rv;
        obj_at(&mut obj, &["metadata"]).insert("resourceVersion".into(), json!(rv.to_string()));
        inner.objects.insert(key(def, ns, name), obj.clone());
        self.publish(
            inner,
            def,
            ns,
            ChangeKind::Modified,
            obj.clone(),
            Some(current),
        );
        Ok(obj)
    }

    pub fn delete(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let mut obj = inner
            .objects
            .remove(&key(def, ns, name))
            .ok_or_else(|| ApiError::not_found(def, name))?;
        inner.rv += 1;
        let rv = inner.rv;
        // The DELETED event carries the final state at a new version, as etcd reports it.
        obj_at(&mut obj, &["metadata"]).insert("resourceVersion".into(), json!(rv.to_string()));
        self.publish(&mut inner, def, ns, ChangeKind::Deleted, obj.clone(), None);
        Ok(obj)
    }

    fn publish(
        &self,
        inner: &mut Inner,
        def: &'static ResourceDef,
        ns: &str,
        kind: ChangeKind,
        object: Value,
        previous: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv: inner.rv,
            def,
            namespace: if def.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            kind,
            object,
            previous,
        });
        inner.history.push_back(change.clone());
        while inner.history.len() > inner.window {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted = old.rv;
            }
        }
        // Sent under the lock so a watch subscribing under the same lock sees no gap and no
        // duplicate between its replay and its live feed.
        let _ = self.changes.send(change);
        if [&resources::PODS, &resources::SERVICES].contains(&def)
            || resources::TRAFFIC_OBJECTS.contains(&def)
        {
            // At most SNAPSHOT_EAGER_PODS pods, found without counting them all.
            let few_pods = inner
                .objects
                .range((resources::PODS.plural, String::new(), String::new())..)
                .take_while(|((plural, _, _), _)| *plural == resources::PODS.plural)
                .nth(SNAPSHOT_EAGER_PODS)
                .is_none();
            if few_pods {
                self.recompute_snapshot(inner);
            } else {
                inner.snapshot_dirty = true;
            }
        }
    }

    fn recompute_snapshot(&self, inner: &mut Inner) {
        inner.snapshot_dirty = false;
        let pods = Self::list_locked(inner, &resources::PODS, None);
        let services = Self::list_locked(inner, &resources::SERVICES, None);
        let routes: Vec<Value> = resources::TRAFFIC_OBJECTS
            .iter()
            .flat_map(|def| Self::list_locked(inner, def, None))
            .collect();
        let next = snapshot::compute(&pods, &services, &routes);
        self.snapshot.send_if_modified(|cur| {
            if *cur == next {
                false
            } else {
                *cur = next;
                true
            }
        });
    }

    /// Brings the traffic snapshot up to date if changes were deferred (large clusters).
    pub fn refresh_snapshot(&self) {
        let mut inner = self.lock();
        if inner.snapshot_dirty {
            self.recompute_snapshot(&mut inner);
        }
    }

    /// Starts a watch. `from` is the client's resourceVersion; `None` (or 0) means "the current
    /// state, then changes", which the server sends as synthetic ADDED events.
    pub fn watch(
        &self,
        def: &'static ResourceDef,
        ns: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        let live = self.changes.subscribe();
        let replay = match from.filter(|rv| *rv > 0) {
            Some(rv) => {
                if rv < inner.compacted {
                    return Err(ApiError::Gone {
                        requested: rv,
                        oldest: inner.compacted + 1,
                    });
                }
                inner
                    .history
                    .iter()
                    .filter(|c| c.rv > rv && c.def == def && ns.is_none_or(|ns| ns == c.namespace))
                    .cloned()
                    .collect()
            }
            None => Self::list_locked(&inner, def, ns)
                .into_iter()
                .map(|object| {
                    Arc::new(Change {
                        rv: rv_of(&object).unwrap_or(inner.rv),
                        def,
                        namespace: util::namespace_of(&object).to_string(),
                        kind: ChangeKind::Added,
                        object,
                        previous: None,
                    })
                })
                .collect(),
        };
        Ok(WatchStart {
            replay,
            live,
            rv: inner.rv,
        })
    }

    /// All objects in a namespace, of every type, for namespace deletion.
    pub fn delete_namespace_contents(&self, ns: &str) {
        let keys: Vec<(&'static ResourceDef, String)> = {
            let inner = self.lock();
            inner
                .objects
                .iter()
                .filter(|((_, n, _), _)| n == ns)
                .filter_map(|((plural, _, name), _)| {
                    resources::ALL
                        .iter()
                        .find(|d| d.plural == *plural)
                        .map(|d| (*d, name.clone()))
                })
                .collect()
        };
        for (def, name) in keys {
            let _ = self.delete(def, ns, &name);
        }
    }

    pub fn name_taken(&self, def: &'static ResourceDef, ns: &str, name: &str) -> bool {
        self.lock().objects.contains_key(&key(def, ns, name))
    }
}

/// Whether objects of `def` carry `metadata.generation`: the grouped APIs here do, except
/// Leases, whose strategy on a real server sets none.
fn tracks_generation(def: &ResourceDef) -> bool {
    !def.group.is_empty() && def != &resources::LEASES
}

pub fn object_rv(v: &Value) -> Option<u64> {
    rv_of(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str, value: &str) -> Value {
        json!({"metadata": {"name": name}, "data": {"k": value}})
    }

    #[test]
    fn a_no_op_update_keeps_the_resource_version() {
        let store = Store::new(100);
        let created = store
            .create(&resources::CONFIGMAPS, "ns", cm("a", "1"))
            .unwrap_or_default();
        let same = store
            .update_with(&resources::CONFIGMAPS, "ns", "a", |_| Ok(()))
            .unwrap_or_default();
        assert_eq!(object_rv(&created), object_rv(&same));
        let changed = store
            .update_with(&resources::CONFIGMAPS, "ns", "a", |o| {
                o["data"]["k"] = json!("2");
                Ok(())
            })
            .unwrap_or_default();
        assert!(object_rv(&changed) > object_rv(&created));
        assert_eq!(changed["metadata"]["uid"], created["metadata"]["uid"]);
    }

    #[test]
    fn watches_replay_from_a_version_inside_the_window_and_expire_before_it() {
        let store = Store::new(3);
        let first = store
            .create(&resources::CONFIGMAPS, "ns", cm("a", "0"))
            .unwrap_or_default();
        let first_rv = object_rv(&first).unwrap_or_default();
        for i in 1..=5 {
            let _ = store.update_with(&resources::CONFIGMAPS, "ns", "a", |o| {
                o["data"]["k"] = json!(i.to_string());
                Ok(())
            });
        }
        assert!(matches!(
            store.watch(&resources::CONFIGMAPS, None, Some(first_rv)),
            Err(ApiError::Gone { .. })
        ));
        let recent = store.resource_version() - 2;
        let start = store.watch(&resources::CONFIGMAPS, Some("ns"), Some(recent));
        let replayed: Vec<u64> = start
            .map(|s| s.replay.iter().map(|c| c.rv).collect())
            .unwrap_or_default();
        assert_eq!(replayed, vec![recent + 1, recent + 2]);
        let other_ns = store.watch(&resources::CONFIGMAPS, Some("other"), Some(recent));
        assert!(other_ns.is_ok_and(|s| s.replay.is_empty()));
    }

    #[test]
    fn a_watch_without_a_version_starts_with_the_current_objects() {
        let store = Store::new(100);
        let _ = store.create(&resources::CONFIGMAPS, "ns", cm("a", "1"));
        let _ = store.create(&resources::CONFIGMAPS, "ns", cm("b", "1"));
        let _ = store.delete(&resources::CONFIGMAPS, "ns", "a");
        let start = store.watch(&resources::CONFIGMAPS, None, None);
        let names: Vec<String> = start
            .map(|s| {
                s.replay
                    .iter()
                    .map(|c| util::name_of(&c.object).to_string())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn creating_twice_is_already_exists_and_missing_objects_are_not_found() {
        let store = Store::new(10);
        let _ = store.create(&resources::CONFIGMAPS, "ns", cm("a", "1"));
        assert!(matches!(
            store.create(&resources::CONFIGMAPS, "ns", cm("a", "1")),
            Err(ApiError::AlreadyExists { .. })
        ));
        assert!(matches!(
            store.get(&resources::CONFIGMAPS, "ns", "zz"),
            Err(ApiError::NotFound { .. })
        ));
    }
}
