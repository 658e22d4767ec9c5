//! Carrying out one piece of engine work with the cluster actions, the routers and the command
//! executor, and wording the result for the log. Decides nothing: the engine chose the work.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::action::{Action, EffectId};
use super::console::Link;
use super::effects::EnvClients;
use crate::cluster::actions::{self, ConfigMapSnapshot, RestoreChange, RolloutStatus};
use crate::engine::Work;
use crate::exec::{self, CommandSpec, Stream};
use crate::notify::{Event, Message};
use crate::plan::{Plan, TrackName, Weight};
use crate::preflight::configmaps_named;

/// The ConfigMaps as last snapshotted, per environment.
pub type Snapshots = Arc<Mutex<BTreeMap<String, ConfigMapSnapshot>>>;

/// Longest one weight write inside `promote` may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Snapshots, in every environment, the ConfigMaps the plan names there, so a `config: restore`
/// always has something to restore. A ConfigMap that cannot be read stops the run before it
/// starts.
pub async fn snapshot_all(plan: &Plan, links: &[Link]) -> Result<Snapshots, String> {
    let mut out = BTreeMap::new();
    for link in links {
        let names = configmaps_named(plan, &link.name);
        if names.is_empty() {
            continue;
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let snap = actions::configmap::snapshot(&link.connection.client, &link.namespace, &refs)
            .await
            .map_err(|e| format!("cannot snapshot ConfigMaps in {}: {e}", link.name))?;
        out.insert(link.name.clone(), snap);
    }
    Ok(Arc::new(Mutex::new(out)))
}

/// What work needs, per environment.
pub struct Carry {
    /// Where `notify` steps go; set once the run's notifier has started.
    notifier: std::sync::OnceLock<crate::notify::Notifier>,
    plan: Arc<Plan>,
    plan_dir: PathBuf,
    envs: BTreeMap<String, EnvClients>,
    snapshots: Snapshots,
    /// A rehearsal (`warroom rehearse`): `run` steps without `rehearse: true` and webhook
    /// messages are printed to the log, not carried out.
    rehearsal: std::sync::atomic::AtomicBool,
}

impl Carry {
    pub fn new(
        plan: Arc<Plan>,
        plan_dir: PathBuf,
        envs: Vec<EnvClients>,
        snapshots: Snapshots,
    ) -> Carry {
        Carry {
            notifier: std::sync::OnceLock::new(),
            plan,
            plan_dir,
            envs: envs.into_iter().map(|e| (e.name.clone(), e)).collect(),
            snapshots,
            rehearsal: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on this is a rehearsal: `run` steps run only with `rehearse: true`, and
    /// `notify` steps are printed, never sent.
    pub fn set_rehearsal(&self) {
        self.rehearsal
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn rehearsal(&self) -> bool {
        self.rehearsal.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `notify` steps send through `notifier` from now on.
    pub fn set_notifier(&self, notifier: crate::notify::Notifier) {
        let _ = self.notifier.set(notifier);
    }

    fn deployment(&self, track: TrackName) -> Result<&str, String> {
        match track {
            TrackName::Stable => Ok(&self.plan.workload.name),
            TrackName::Canary => self
                .plan
                .workload
                .canary
                .as_deref()
                .ok_or_else(|| "the plan has no workload.canary".to_string()),
        }
    }

    /// Carries out `work` in `environment`; `Ok` is the line for the log.
    pub async fn run(
        &self,
        id: EffectId,
        environment: &str,
        phase: &str,
        work: Work,
        actions: &UnboundedSender<Action>,
        cancel: &CancellationToken,
    ) -> Result<String, String> {
        let env = self
            .envs
            .get(environment)
            .ok_or_else(|| format!("environment {environment} is not connected"))?;
        let ns = env.namespace.as_str();
        let client = &env.client;
        match work {
            Work::SetWeight { .. } => Err("weights are written by the weight writer".into()),
            Work::SetImage { track, timeout } => {
                let name = self.deployment(track)?;
                let image = self
                    .plan
                    .workload
                    .image
                    .as_deref()
                    .ok_or("the plan has no workload.image")?;
                let change = actions::set_image(
                    client,
                    ns,
                    name,
                    self.plan.workload.container.as_deref(),
                    image,
                )
                .await
                .map_err(|e| e.to_string())?;
                let _ = actions.send(Action::EffectOutput {
                    id,
                    line: format!(
                        "deployment.apps/{name} image updated: {}={} (was {}); following the rollout",
                        change.container,
                        change.image,
                        change.previous.as_deref().unwrap_or("none")
                    ),
                });
                wait(client, ns, name, timeout).await
            }
            Work::WaitRollout { track, timeout } => {
                wait(client, ns, self.deployment(track)?, timeout).await
            }
            Work::Scale { track, replicas } => {
                let name = self.deployment(track)?;
                let replicas = i32::try_from(replicas).map_err(|_| "replicas out of range")?;
                let change = actions::scale(client, ns, name, replicas)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "deployment.apps/{name} scaled from {} to {}",
                    change.previous, change.replicas
                ))
            }
            Work::Undo { track } => {
                let name = self.deployment(track)?;
                let outcome = actions::rollout::undo(client, ns, name, None)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(outcome.message(name))
            }
            Work::SetFlag {
                configmap,
                key,
                value,
            } => {
                let change = actions::configmap::set_key(client, ns, &configmap, &key, &value)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "configmap {ns}/{configmap}: {key} = {value:?} (was {})",
                    change
                        .previous
                        .map_or("unset".to_string(), |p| format!("{p:?}"))
                ))
            }
            Work::SnapshotConfig => {
                let names = configmaps_named(&self.plan, environment);
                if names.is_empty() {
                    return Ok("no ConfigMaps named in the plan; nothing to snapshot".into());
                }
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let snap = actions::configmap::snapshot(client, ns, &refs)
                    .await
                    .map_err(|e| e.to_string())?;
                // Journaled before the step's result, so a resumed run restores this one.
                let _ = actions.send(Action::Snapshotted {
                    environment: environment.to_string(),
                    configmaps: snap.items.clone(),
                });
                self.snapshots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(environment.to_string(), snap);
                Ok(format!("snapshot of ConfigMaps {}", names.join(", ")))
            }
            Work::RestoreConfig => {
                let snap = self
                    .snapshots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(environment)
                    .cloned();
                let Some(snap) = snap else {
                    return Err(format!(
                        "no ConfigMap snapshot for {environment}: the plan names no ConfigMap"
                    ));
                };
                let restored = actions::configmap::restore(client, &snap).await;
                let mut done = Vec::new();
                let mut failed = Vec::new();
                for r in restored {
                    match r.result {
                        Ok(RestoreChange::Unchanged) => done.push(format!("{} unchanged", r.name)),
                        Ok(RestoreChange::Recreated) => done.push(format!("{} recreated", r.name)),
                        Ok(RestoreChange::Rewritten { .. }) => {
                            done.push(format!("{} restored", r.name))
                        }
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                if failed.is_empty() {
                    Ok(format!("ConfigMaps {}", done.join(", ")))
                } else {
                    Err(failed.join("; "))
                }
            }
            Work::Promote { timeout } => self.promote(id, env, timeout, actions).await,
            Work::Run {
                cmd,
                rehearse: false,
                ..
            } if self.rehearsal() => Ok(format!(
                "rehearsal: not run: `{cmd}` (printed only; `rehearse: true` on the step runs it against the simulator)"
            )),
            Work::Run { cmd, timeout, .. } => {
                let kubeconfig = env.kubeconfig.as_deref().ok_or_else(|| {
                    format!(
                        "no kubeconfig for environment {environment}; cannot run commands there"
                    )
                })?;
                let spec = CommandSpec {
                    cmd: cmd.clone(),
                    dir: self.plan_dir.clone(),
                    timeout,
                    env: exec::phase_env(
                        kubeconfig,
                        &self.plan.name,
                        phase,
                        environment,
                        ns,
                        &env.context,
                    ),
                };
                let out = actions.clone();
                exec::run_command(
                    &spec,
                    move |stream, line| {
                        let line = match stream {
                            Stream::Stdout => line,
                            Stream::Stderr => format!("stderr: {line}"),
                        };
                        let _ = out.send(Action::EffectOutput { id, line });
                    },
                    cancel.clone(),
                )
                .await
                .map(|()| format!("`{cmd}` exited 0"))
                .map_err(|e| format!("`{cmd}` {e}"))
            }
            Work::Notify { text } if self.rehearsal() => Ok(format!(
                "rehearsal: notify: {text} (printed only; no webhook is sent in a rehearsal)"
            )),
            Work::Notify { text } => {
                let Some(notifier) = self.notifier.get().filter(|n| n.wants(Event::Step)) else {
                    return Ok(format!("notify: {text} (the plan has no webhook)"));
                };
                let mut message = Message::new(Event::Step, self.plan.name.clone(), text.clone());
                message.environment = Some(environment.to_string());
                match notifier.send(message) {
                    Some(n) => Ok(format!("notify: {text} (webhook message #{n} queued)")),
                    None => Ok(format!("notify: {text}")),
                }
            }
        }
    }

    /// Stable gets the new image and is ready before the canary's weight goes to 0 and the
    /// canary is scaled to 0: there is never a moment without ready capacity.
    async fn promote(
        &self,
        id: EffectId,
        env: &EnvClients,
        timeout: Duration,
        actions: &UnboundedSender<Action>,
    ) -> Result<String, String> {
        let ns = env.namespace.as_str();
        let stable = self.plan.workload.name.as_str();
        let image = self
            .plan
            .workload
            .image
            .as_deref()
            .ok_or("the plan has no workload.image to promote")?;
        let progress = |note: String| {
            let _ = actions.send(Action::EffectOutput { id, line: note });
        };
        actions::set_image(
            &env.client,
            ns,
            stable,
            self.plan.workload.container.as_deref(),
            image,
        )
        .await
        .map_err(|e| e.to_string())?;
        progress(format!(
            "promote: deployment.apps/{stable} image → {image}; waiting for it to be ready"
        ));
        let ready = wait(&env.client, ns, stable, timeout).await?;
        progress(format!("promote: {ready}"));
        if let Some(router) = &env.router {
            match tokio::time::timeout(WRITE_TIMEOUT, router.set_weight(Weight::ZERO)).await {
                Ok(Ok(())) => progress("promote: canary weight → 0% stored".to_string()),
                Ok(Err(e)) => return Err(format!("promote: canary weight NOT set to 0%: {e}")),
                Err(_) => {
                    return Err(format!(
                        "promote: canary weight NOT set to 0%: no answer within {} s",
                        WRITE_TIMEOUT.as_secs()
                    ));
                }
            }
        }
        if let Some(canary) = self.plan.workload.canary.as_deref() {
            actions::scale(&env.client, ns, canary, 0)
                .await
                .map_err(|e| format!("promote: {e}"))?;
            progress(format!("promote: deployment.apps/{canary} scaled to 0"));
        }
        Ok(format!("promoted: {stable} runs {image}"))
    }
}

/// `kubectl rollout status` until complete, failed or `timeout`.
async fn wait(
    client: &kube::Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    match actions::status::wait_complete(client, ns, name, deadline).await {
        Ok(RolloutStatus::Done(m)) => Ok(m),
        Ok(RolloutStatus::Failed(m)) => Err(m),
        Ok(RolloutStatus::Waiting(m)) => Err(format!(
            "deployment.apps/{name} not rolled out within {}: {m}",
            crate::plan::duration::format_duration(timeout)
        )),
        Err(e) => Err(e.to_string()),
    }
}
