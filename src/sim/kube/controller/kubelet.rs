//! Scheduler and kubelet: places pods on nodes and walks them Pending → ContainerCreating →
//! Running → Ready (and Terminating → gone) with jittered delays. It must not create pods.

use std::collections::HashSet;
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Controllers, NODES, Source, is_terminating, jitter};
use crate::sim::kube::error::ApiError;
use crate::sim::kube::resources;
use crate::sim::kube::snapshot::pod_is_ready;
use crate::sim::kube::util::{self, name_of, namespace_of, obj_at, str_at, uid_of};

/// Lifecycle stages of a pod as the scheduler and kubelet move it along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Unscheduled,
    Scheduled,
    Creating,
    Started,
    Ready,
    Terminating,
}

pub(super) struct PodClock {
    stage: Stage,
    /// Whether the pod's containers were crashing when the clock was set.
    crashing: bool,
    due: Instant,
}

/// The kubelet's restart back-off after the `restarts`-th crash: 10 s doubling up to 5 min.
fn crash_backoff_secs(restarts: i64) -> u64 {
    let doublings = u32::try_from(restarts.saturating_sub(1).clamp(0, 5)).unwrap_or(5);
    (10u64 << doublings).min(300)
}

impl Controllers {
    fn stage_of(pod: &Value) -> Stage {
        if is_terminating(pod) {
            return Stage::Terminating;
        }
        if pod.pointer("/spec/nodeName").is_none() {
            return Stage::Unscheduled;
        }
        let statuses = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array);
        match statuses {
            None => Stage::Scheduled,
            Some(cs) if cs.iter().any(|c| c.pointer("/state/waiting").is_some()) => Stage::Creating,
            Some(_) if pod_is_ready(pod) => Stage::Ready,
            Some(_) => Stage::Started,
        }
    }

    fn delay_for(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Unscheduled => jitter(100, 300, self.speed),
            Stage::Scheduled => jitter(100, 300, self.speed),
            Stage::Creating => jitter(500, 1500, self.speed),
            Stage::Started => jitter(300, 1000, self.speed),
            Stage::Ready => Duration::from_secs(3600),
            Stage::Terminating => jitter(500, 1500, self.speed),
        }
    }

    /// Scheduler and kubelet in one: moves each pod one stage when its jittered delay is up.
    pub(super) fn kubelet(&mut self) {
        let (pods, _) = self.sim.store().list(&resources::PODS, None);
        let now = Instant::now();
        let live: HashSet<&str> = pods.iter().map(uid_of).collect();
        self.node_load = NODES
            .iter()
            .map(|n| {
                pods.iter()
                    .filter(|p| !is_terminating(p) && str_at(p, "/spec/nodeName") == Some(n))
                    .count()
            })
            .collect();
        self.pods.retain(|uid, _| live.contains(uid.as_str()));
        for pod in &pods {
            let stage = Self::stage_of(pod);
            let uid = uid_of(pod).to_string();
            let running = matches!(stage, Stage::Started | Stage::Ready);
            let crashing = running && self.sim.pod_crashes(pod);
            let due = match self.pods.get(&uid) {
                Some(c) if c.stage == stage && c.crashing == crashing => c.due,
                _ => {
                    let due = if crashing {
                        // A crashing container runs a little while before it exits.
                        now + jitter(1000, 3000, self.speed)
                    } else {
                        now + self.delay_for(stage)
                    };
                    if stage == Stage::Terminating {
                        self.terminating(pod);
                    }
                    self.pods.insert(
                        uid.clone(),
                        PodClock {
                            stage,
                            crashing,
                            due,
                        },
                    );
                    due
                }
            };
            if now < due || (stage == Stage::Ready && !crashing) {
                continue;
            }
            let result = if crashing {
                self.crashed(pod)
            } else {
                self.advance(pod, stage)
            };
            if let Err(e) = result {
                tracing::debug!(pod = name_of(pod), error = %e, "pod transition deferred");
            }
        }
    }

    /// A failed pull, as the kubelet reports it: `ErrImagePull` first, then `ImagePullBackOff`
    /// alternating with retries, each retry later than the last would be on a real node.
    fn pull_failed(&mut self, pod: &Value, image: &str, node: &str) -> Result<(), ApiError> {
        let was = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| str_at(c, "/state/waiting/reason"))
            .next()
            .unwrap_or_default()
            .to_string();
        let (reason, message) = if was == "ErrImagePull" {
            (
                "ImagePullBackOff",
                format!("Back-off pulling image \"{image}\""),
            )
        } else {
            (
                "ErrImagePull",
                format!(
                    "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": not found"
                ),
            )
        };
        let updated = self.sim.store().update_with(
            &resources::PODS,
            namespace_of(pod),
            name_of(pod),
            |p| {
                if let Some(list) = p
                    .pointer_mut("/status/containerStatuses")
                    .and_then(Value::as_array_mut)
                {
                    for c in list.iter_mut() {
                        if str_at(c, "/image") == Some(image) {
                            util::set_at(
                                c,
                                &["state"],
                                json!({"waiting": {"reason": reason, "message": message}}),
                            );
                        }
                    }
                }
                Ok(())
            },
        )?;
        let cname = containers(pod)
            .iter()
            .find(|c| str_at(c, "/image") == Some(image))
            .and_then(|c| str_at(c, "/name").map(str::to_string))
            .unwrap_or_default();
        let fp = format!("spec.containers{{{cname}}}");
        let (event_reason, event_message, warning) = if reason == "ErrImagePull" {
            (
                "Failed",
                format!(
                    "Failed to pull image \"{image}\": rpc error: code = NotFound desc = {message}"
                ),
                true,
            )
        } else {
            ("BackOff", message.clone(), false)
        };
        self.event(
            &updated,
            &resources::PODS,
            event_reason,
            &event_message,
            Source {
                component: "kubelet",
                host: Some(node),
                field_path: Some(&fp),
                warning,
            },
        );
        // Stay in this stage; retry after a back-off instead of on the next tick.
        let retry = jitter(3000, 6000, self.speed);
        self.pods.insert(
            uid_of(pod).to_string(),
            PodClock {
                stage: Stage::Creating,
                crashing: false,
                due: Instant::now() + retry,
            },
        );
        Ok(())
    }

    /// The containers exited with an error: the kubelet records the termination in
    /// `lastState`, counts a restart and waits out a growing back-off (`CrashLoopBackOff`)
    /// before starting them again.
    fn crashed(&mut self, pod: &Value) -> Result<(), ApiError> {
        let now = util::now_rfc3339();
        let ns = namespace_of(pod).to_string();
        let name = name_of(pod).to_string();
        let uid = uid_of(pod).to_string();
        let mut restarts = 0;
        let updated =
            self.sim
                .store()
                .update_with(&resources::PODS, &ns, &name, |p| {
                    let status = obj_at(p, &["status"]);
                    if let Some(list) = status
                        .get_mut("containerStatuses")
                        .and_then(Value::as_array_mut)
                    {
                        for c in list.iter_mut() {
                            let count = util::i64_at(c, "/restartCount").unwrap_or(0) + 1;
                            restarts = restarts.max(count);
                            let cname = str_at(c, "/name").unwrap_or_default().to_string();
                            let started_at = str_at(c, "/state/running/startedAt")
                                .unwrap_or(now.as_str())
                                .to_string();
                            let container_id =
                                str_at(c, "/containerID").unwrap_or_default().to_string();
                            let backoff = crash_backoff_secs(count);
                            util::set_at(
                                c,
                                &["lastState"],
                                json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started_at, "finishedAt": now, "containerID": container_id}}),
                            );
                            util::set_at(
                                c,
                                &["state"],
                                json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off {backoff}s restarting failed container={cname} pod={name}_{ns}({uid})")}}),
                            );
                            util::set_at(c, &["restartCount"], json!(count));
                            util::set_at(c, &["ready"], json!(false));
                            util::set_at(c, &["started"], json!(false));
                        }
                    }
                    let names: Vec<String> = containers(p)
                        .iter()
                        .filter_map(|c| str_at(c, "/name").map(str::to_string))
                        .collect();
                    let message = format!("containers with unready status: [{}]", names.join(" "));
                    if let Some(list) = obj_at(p, &["status"])
                        .get_mut("conditions")
                        .and_then(Value::as_array_mut)
                    {
                        for c in list.iter_mut() {
                            if matches!(str_at(c, "/type"), Some("Ready" | "ContainersReady"))
                                && str_at(c, "/status") != Some("False")
                            {
                                *c = json!({"type": c["type"].clone(), "status": "False", "lastProbeTime": null, "lastTransitionTime": now, "reason": "ContainersNotReady", "message": message});
                            }
                        }
                    }
                    Ok(())
                })?;
        let host = str_at(pod, "/spec/nodeName").map(str::to_string);
        for c in containers(pod) {
            let cname = str_at(&c, "/name").unwrap_or_default();
            self.event(
                &updated,
                &resources::PODS,
                "BackOff",
                &format!("Back-off restarting failed container {cname} in pod {name}_{ns}({uid})"),
                Source {
                    component: "kubelet",
                    host: host.as_deref(),
                    field_path: Some(&format!("spec.containers{{{cname}}}")),
                    warning: true,
                },
            );
        }
        let backoff = crash_backoff_secs(restarts) as f64 * 1000.0 / self.speed;
        self.pods.insert(
            uid,
            PodClock {
                stage: Stage::Creating,
                crashing: false,
                due: Instant::now() + std::time::Duration::from_millis(backoff as u64),
            },
        );
        Ok(())
    }

    /// The scheduler's spreading, reduced to its essence: the node running the fewest pods,
    /// ties broken at random. Loads are counted once per pass (see `kubelet`), not per pod.
    fn least_loaded_node(&mut self) -> &'static str {
        let mut best: Option<(usize, u32, &'static str)> = None;
        for (i, n) in NODES.iter().enumerate() {
            let candidate = (
                self.node_load.get(i).copied().unwrap_or(0),
                rand::rng().random::<u32>(),
                *n,
            );
            if best.is_none_or(|b| candidate < b) {
                best = Some(candidate);
            }
        }
        let node = best.map(|(_, _, n)| n).unwrap_or("sim-node-1");
        if let Some(i) = NODES.iter().position(|n| *n == node) {
            if let Some(l) = self.node_load.get_mut(i) {
                *l += 1;
            }
        }
        node
    }

    /// The kubelet stops the containers: they and the pod stop being ready at once, which is
    /// what takes a terminating pod out of its Service's endpoints.
    fn terminating(&self, pod: &Value) {
        let now = util::now_rfc3339();
        let _ =
            self.sim
                .store()
                .update_with(&resources::PODS, namespace_of(pod), name_of(pod), |p| {
                    let status = obj_at(p, &["status"]);
                    if let Some(list) = status
                        .get_mut("containerStatuses")
                        .and_then(Value::as_array_mut)
                    {
                        for c in list.iter_mut() {
                            util::set_at(c, &["ready"], json!(false));
                        }
                    }
                    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
                        for c in list.iter_mut() {
                            if matches!(str_at(c, "/type"), Some("Ready" | "ContainersReady"))
                                && str_at(c, "/status") == Some("True")
                            {
                                util::set_at(c, &["status"], json!("False"));
                                util::set_at(c, &["lastTransitionTime"], json!(now));
                            }
                        }
                    }
                    Ok(())
                });
        let host = str_at(pod, "/spec/nodeName");
        for c in containers(pod) {
            let cname = str_at(&c, "/name").unwrap_or_default();
            self.event(
                pod,
                &resources::PODS,
                "Killing",
                &format!("Stopping container {cname}"),
                Source {
                    component: "kubelet",
                    host,
                    field_path: Some(&format!("spec.containers{{{cname}}}")),
                    warning: false,
                },
            );
        }
    }

    fn advance(&mut self, pod: &Value, stage: Stage) -> Result<(), ApiError> {
        let sim = self.sim.clone();
        let store = sim.store();
        let ns = namespace_of(pod);
        let name = name_of(pod);
        let now = util::now_rfc3339();
        match stage {
            Stage::Unscheduled => {
                let node = self.least_loaded_node();
                let updated = store.update_with(&resources::PODS, ns, name, |p| {
                    util::set_at(p, &["spec", "nodeName"], json!(node));
                    let conds = obj_at(p, &["status"]).entry("conditions").or_insert(json!([]));
                    if let Some(list) = conds.as_array_mut() {
                        list.retain(|c| str_at(c, "/type") != Some("PodScheduled"));
                        list.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
                    }
                    Ok(())
                })?;
                self.event(
                    &updated,
                    &resources::PODS,
                    "Scheduled",
                    &format!("Successfully assigned {ns}/{name} to {node}"),
                    Source {
                        component: "default-scheduler",
                        host: None,
                        field_path: None,
                        warning: false,
                    },
                );
            }
            Stage::Scheduled => {
                let node = str_at(pod, "/spec/nodeName")
                    .unwrap_or("sim-node-1")
                    .to_string();
                let node_index = NODES.iter().position(|n| *n == node).unwrap_or(0) + 1;
                self.next_ip = if self.next_ip >= 250 {
                    10
                } else {
                    self.next_ip + 1
                };
                let ip = format!("10.244.{node_index}.{}", self.next_ip);
                let host_ip = format!("172.18.0.{}", node_index + 1);
                let names: Vec<String> = containers(pod)
                    .iter()
                    .filter_map(|c| str_at(c, "/name").map(str::to_string))
                    .collect();
                let updated = store.update_with(&resources::PODS, ns, name, |p| {
                    let statuses: Vec<Value> = containers(p)
                        .iter()
                        .map(|c| json!({
                            "name": str_at(c, "/name").unwrap_or_default(),
                            "image": str_at(c, "/image").unwrap_or_default(),
                            "imageID": "",
                            "ready": false,
                            "restartCount": 0,
                            "started": false,
                            "state": {"waiting": {"reason": "ContainerCreating"}},
                            "lastState": {},
                            "volumeMounts": [],
                        }))
                        .collect();
                    let not_ready = format!("containers with unready status: [{}]", names.join(" "));
                    let status = obj_at(p, &["status"]);
                    status.insert("phase".into(), json!("Pending"));
                    status.insert("hostIP".into(), json!(host_ip));
                    status.insert("hostIPs".into(), json!([{"ip": host_ip}]));
                    status.insert("podIP".into(), json!(ip));
                    status.insert("podIPs".into(), json!([{"ip": ip}]));
                    status.insert("startTime".into(), json!(now));
                    status.insert("containerStatuses".into(), json!(statuses));
                    status.insert("conditions".into(), json!([
                        {"type": "PodReadyToStartContainers", "status": "False", "lastProbeTime": null, "lastTransitionTime": now},
                        {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
                        {"type": "Ready", "status": "False", "lastProbeTime": null, "lastTransitionTime": now, "reason": "ContainersNotReady", "message": not_ready},
                        {"type": "ContainersReady", "status": "False", "lastProbeTime": null, "lastTransitionTime": now, "reason": "ContainersNotReady", "message": not_ready},
                        {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
                    ]));
                    Ok(())
                })?;
                for c in containers(&updated) {
                    let cname = str_at(&c, "/name").unwrap_or_default();
                    let image = str_at(&c, "/image").unwrap_or_default();
                    let (reason, message) = if self.sim.image_pull_fails(image) {
                        ("Pulling", format!("Pulling image \"{image}\""))
                    } else {
                        (
                            "Pulled",
                            format!("Container image \"{image}\" already present on machine"),
                        )
                    };
                    self.event(
                        &updated,
                        &resources::PODS,
                        reason,
                        &message,
                        Source {
                            component: "kubelet",
                            host: Some(&node),
                            field_path: Some(&format!("spec.containers{{{cname}}}")),
                            warning: false,
                        },
                    );
                }
            }
            Stage::Creating => {
                let node = str_at(pod, "/spec/nodeName")
                    .unwrap_or_default()
                    .to_string();
                if let Some(image) = containers(pod)
                    .iter()
                    .filter_map(|c| str_at(c, "/image"))
                    .find(|i| self.sim.image_pull_fails(i))
                {
                    return self.pull_failed(pod, image, &node);
                }
                let updated = store.update_with(&resources::PODS, ns, name, |p| {
                    // A restart keeps the count and the last termination.
                    let previous: Vec<Value> = p
                        .pointer("/status/containerStatuses")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let statuses: Vec<Value> = containers(p)
                        .iter()
                        .map(|c| {
                            let image = str_at(c, "/image").unwrap_or_default();
                            let cname = str_at(c, "/name").unwrap_or_default();
                            let before = previous.iter().find(|s| str_at(s, "/name") == Some(cname));
                            let restarts = before.and_then(|s| util::i64_at(s, "/restartCount")).unwrap_or(0);
                            let last = before.and_then(|s| s.get("lastState")).cloned().unwrap_or(json!({}));
                            json!({
                                "name": str_at(c, "/name").unwrap_or_default(),
                                "image": image,
                                "imageID": format!("{image}@sha256:{:016x}{:016x}{:016x}{:016x}", util::fnv1a(image.as_bytes()), util::fnv1a(format!("{image}#1").as_bytes()), util::fnv1a(format!("{image}#2").as_bytes()), util::fnv1a(format!("{image}#3").as_bytes())),
                                "containerID": format!("containerd://{:016x}{:016x}{:016x}{:016x}", rand::rng().random::<u64>(), rand::rng().random::<u64>(), rand::rng().random::<u64>(), rand::rng().random::<u64>()),
                                "ready": false,
                                "restartCount": restarts,
                                "started": true,
                                "state": {"running": {"startedAt": now}},
                                "lastState": last,
                                "volumeMounts": [],
                            })
                        })
                        .collect();
                    let status = obj_at(p, &["status"]);
                    status.insert("phase".into(), json!("Running"));
                    status.insert("containerStatuses".into(), json!(statuses));
                    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
                        for c in list.iter_mut() {
                            if str_at(c, "/type") == Some("PodReadyToStartContainers") {
                                util::set_at(c, &["status"], json!("True"));
                                util::set_at(c, &["lastTransitionTime"], json!(now));
                            }
                        }
                    }
                    Ok(())
                })?;
                for c in containers(&updated) {
                    let cname = str_at(&c, "/name").unwrap_or_default();
                    let fp = format!("spec.containers{{{cname}}}");
                    self.event(
                        &updated,
                        &resources::PODS,
                        "Created",
                        &format!("Created container: {cname}"),
                        Source {
                            component: "kubelet",
                            host: Some(&node),
                            field_path: Some(&fp),
                            warning: false,
                        },
                    );
                    self.event(
                        &updated,
                        &resources::PODS,
                        "Started",
                        &format!("Started container {cname}"),
                        Source {
                            component: "kubelet",
                            host: Some(&node),
                            field_path: Some(&fp),
                            warning: false,
                        },
                    );
                }
            }
            Stage::Started => {
                store.update_with(&resources::PODS, ns, name, |p| {
                    let status = obj_at(p, &["status"]);
                    if let Some(list) = status.get_mut("containerStatuses").and_then(Value::as_array_mut) {
                        for c in list.iter_mut() {
                            util::set_at(c, &["ready"], json!(true));
                        }
                    }
                    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
                        for c in list.iter_mut() {
                            if matches!(str_at(c, "/type"), Some("Ready" | "ContainersReady")) {
                                *c = json!({"type": c["type"].clone(), "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
                            }
                        }
                    }
                    Ok(())
                })?;
            }
            Stage::Terminating => {
                store.delete(&resources::PODS, ns, name)?;
            }
            Stage::Ready => {}
        }
        Ok(())
    }
}

fn containers(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}
