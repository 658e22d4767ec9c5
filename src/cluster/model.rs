//! What the console knows about the cluster, as plain data converted from Kubernetes objects.
//! No kube types here: the app and the UI depend on this, not on the API.

use std::time::SystemTime;

use crate::health::Health;
use crate::plan::TrackName;

/// One pod as the pod table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodView {
    pub name: String,
    pub track: Option<TrackName>,
    pub ready_containers: u32,
    pub total_containers: u32,
    /// What `kubectl get pods` prints in STATUS (`Running`, `Pending`, `CrashLoopBackOff`, …).
    pub status: String,
    pub restarts: u32,
    pub created: Option<SystemTime>,
    /// Image tag of the first container.
    pub version: String,
}

/// One Deployment's replica summary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkloadView {
    pub name: String,
    pub desired: u32,
    pub ready: u32,
    pub updated: u32,
    pub available: u32,
    pub image: String,
    /// `deployment.kubernetes.io/revision`: the revision the Deployment is rolling out.
    pub revision: Option<u64>,
}

/// One ReplicaSet of a plan's Deployment: a revision and the pods it still runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSetView {
    pub name: String,
    pub track: TrackName,
    pub revision: Option<u64>,
    pub desired: u32,
    pub ready: u32,
}

/// What the cluster watch reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterEvent {
    /// The full set of pods after a (re)list: replaces what was known, so a relist after a
    /// `410 Gone` neither loses nor duplicates pods.
    PodsRelisted(Vec<PodView>),
    PodApplied(PodView),
    PodDeleted(String),
    Workload(TrackName, WorkloadView),
    /// Every ReplicaSet of the plan's Deployments after a (re)list, replacing what was known.
    ReplicaSetsRelisted(Vec<ReplicaSetView>),
    ReplicaSetApplied(ReplicaSetView),
    ReplicaSetDeleted(String),
    Health(Health),
}
