//! Carrying out one piece of engine work with the cluster actions, the routers and the command
//! executor, and wording the result for the log. Decides nothing: the engine chose the work.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use tokio::time::Instant;

use super::action::{Action, EffectId, Purpose};
use super::console::Link;
use super::effects::{
    EMERGENCY_RETRY_FOR, EnvClients, FIRST_RETRY_WAIT, LONGEST_RETRY_WAIT, STEP_RETRY_FOR,
    WRITE_TIMEOUT,
};
use crate::cluster::actions::{self, ActionError, ConfigMapSnapshot, RestoreChange, RolloutStatus};
use crate::engine::Work;
use crate::exec::{self, CommandSpec, Stream};
use crate::notify::{Event, Message};
use crate::plan::{Plan, TrackName, Weight};
use crate::preflight::configmaps_named;
use crate::traffic::RouterError;

/// The ConfigMaps as last snapshotted, per environment.
pub type Snapshots = Arc<Mutex<BTreeMap<String, ConfigMapSnapshot>>>;

/// One failed attempt, sorted while its error was still typed: whether trying again later may
/// help, and what to say.
#[derive(Debug)]
struct Failure {
    transient: bool,
    message: String,
}

impl Failure {
    /// The attempt got no answer within `limit`: the API server may be hanging; it may answer
    /// the next one.
    fn no_answer(limit: Duration) -> Failure {
        Failure {
            transient: true,
            message: format!("no answer from the API server within {} s", limit.as_secs()),
        }
    }
}

impl From<ActionError> for Failure {
    fn from(e: ActionError) -> Failure {
        Failure {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

impl From<RouterError> for Failure {
    /// As the weight writer sorts them: a malformed traffic object or refused access stays so.
    fn from(e: RouterError) -> Failure {
        Failure {
            transient: matches!(e, RouterError::Api(_) | RouterError::Conflict(_)),
            message: e.to_string(),
        }
    }
}

/// Retries idempotent work while the API server fails transiently (unreachable, 429/5xx, no
/// answer in time), with backoff from [`FIRST_RETRY_WAIT`] doubling to [`LONGEST_RETRY_WAIT`],
/// for `retry_for` after the first failure; every failed attempt is reported to the log as
/// [`Action::EffectProgress`]. Anything else fails at once.
struct Retry<'a> {
    id: EffectId,
    actions: &'a UnboundedSender<Action>,
    cancel: &'a CancellationToken,
    retry_for: Duration,
}

impl Retry<'_> {
    /// `attempt` until it succeeds, fails for good, or the retry time (or `until`, if sooner) is
    /// up; each attempt is bounded by `per_attempt` when given. The error is the last attempt's.
    async fn run<T, F, Fut>(
        &self,
        until: Option<Instant>,
        per_attempt: Option<Duration>,
        mut attempt: F,
    ) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut delay = FIRST_RETRY_WAIT;
        let mut give_up_at: Option<Instant> = None;
        let mut n: u32 = 1;
        loop {
            let result = match per_attempt {
                Some(limit) => tokio::time::timeout(limit, attempt())
                    .await
                    .unwrap_or_else(|_| Err(Failure::no_answer(limit))),
                None => attempt().await,
            };
            let failure = match result {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let retries_end = *give_up_at.get_or_insert_with(|| Instant::now() + self.retry_for);
            let retries_end = until.map_or(retries_end, |u| u.min(retries_end));
            if !failure.transient {
                return Err(failure.message);
            }
            if Instant::now() + delay >= retries_end {
                return Err(if n > 1 {
                    format!("{} (gave up after {n} attempts)", failure.message)
                } else {
                    failure.message
                });
            }
            let _ = self.actions.send(Action::EffectProgress {
                id: self.id,
                note: format!(
                    "attempt {n} failed: {}; retrying in {} ms",
                    failure.message,
                    delay.as_millis()
                ),
            });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.cancel.cancelled() => {
                    return Err(format!("stopped while retrying: {}", failure.message));
                }
            }
            delay = (delay * 2).min(LONGEST_RETRY_WAIT);
            n += 1;
        }
    }
}

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
    ///
    /// Work that is safe to repeat (set image, rollout waits, scale, flags, ConfigMap snapshot
    /// and restore, promote) retries while the API server fails transiently, each failed attempt
    /// reported as [`Action::EffectProgress`]: a rollback's for [`EMERGENCY_RETRY_FOR`], any
    /// other for [`STEP_RETRY_FOR`]. `undo` is not retried (a second undo goes back one more
    /// revision), nor are commands or notifications. `cancel` ends the waits between attempts.
    #[allow(clippy::too_many_arguments)]
    pub async fn run(
        &self,
        id: EffectId,
        environment: &str,
        phase: &str,
        purpose: Purpose,
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
        let retry = Retry {
            id,
            actions,
            cancel,
            retry_for: match purpose {
                Purpose::Rollback => EMERGENCY_RETRY_FOR,
                Purpose::Step | Purpose::Operator => STEP_RETRY_FOR,
            },
        };
        let bounded = Some(WRITE_TIMEOUT);
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
                let container = self.plan.workload.container.as_deref();
                let change = retry
                    .run(None, bounded, || async move {
                        Ok(actions::set_image(client, ns, name, container, image).await?)
                    })
                    .await?;
                let _ = actions.send(Action::EffectOutput {
                    id,
                    line: format!(
                        "deployment.apps/{name} image updated: {}={} (was {}); following the rollout",
                        change.container,
                        change.image,
                        change.previous.as_deref().unwrap_or("none")
                    ),
                });
                wait(&retry, client, ns, name, timeout).await
            }
            Work::WaitRollout { track, timeout } => {
                wait(&retry, client, ns, self.deployment(track)?, timeout).await
            }
            Work::Scale { track, replicas } => {
                let name = self.deployment(track)?;
                let replicas = i32::try_from(replicas).map_err(|_| "replicas out of range")?;
                let change = retry
                    .run(None, bounded, || async move {
                        Ok(actions::scale(client, ns, name, replicas).await?)
                    })
                    .await?;
                Ok(format!(
                    "deployment.apps/{name} scaled from {} to {}",
                    change.previous, change.replicas
                ))
            }
            // Not retried: an undo that reached the server before the answer was lost would
            // go back one more revision the second time.
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
                let (cm, k, v) = (configmap.as_str(), key.as_str(), value.as_str());
                let change = retry
                    .run(None, bounded, || async move {
                        Ok(actions::configmap::set_key(client, ns, cm, k, v).await?)
                    })
                    .await?;
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
                let refs = refs.as_slice();
                let snap = retry
                    .run(None, bounded, || async move {
                        Ok(actions::configmap::snapshot(client, ns, refs).await?)
                    })
                    .await?;
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
                let snap = &snap;
                // Restoring to the snapshot again is harmless: all of it is tried again while
                // every failure is transient.
                let done = retry
                    .run(None, bounded, || async move {
                        let restored = actions::configmap::restore(client, snap).await;
                        let mut done = Vec::new();
                        let mut failed = Vec::new();
                        let mut transient = true;
                        for r in restored {
                            match r.result {
                                Ok(RestoreChange::Unchanged) => {
                                    done.push(format!("{} unchanged", r.name))
                                }
                                Ok(RestoreChange::Recreated) => {
                                    done.push(format!("{} recreated", r.name))
                                }
                                Ok(RestoreChange::Rewritten { .. }) => {
                                    done.push(format!("{} restored", r.name))
                                }
                                Err(e) => {
                                    transient &= e.is_transient();
                                    failed.push(e.to_string());
                                }
                            }
                        }
                        if failed.is_empty() {
                            Ok(done)
                        } else {
                            Err(Failure {
                                transient,
                                message: failed.join("; "),
                            })
                        }
                    })
                    .await?;
                Ok(format!("ConfigMaps {}", done.join(", ")))
            }
            Work::Promote { timeout } => self.promote(&retry, env, timeout).await,
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
    /// Every part is safe to repeat, so each retries as [`Retry`] says.
    async fn promote(
        &self,
        retry: &Retry<'_>,
        env: &EnvClients,
        timeout: Duration,
    ) -> Result<String, String> {
        let (id, actions) = (retry.id, retry.actions);
        let client = &env.client;
        let bounded = Some(WRITE_TIMEOUT);
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
        let container = self.plan.workload.container.as_deref();
        retry
            .run(None, bounded, || async move {
                Ok(actions::set_image(client, ns, stable, container, image).await?)
            })
            .await?;
        progress(format!(
            "promote: deployment.apps/{stable} image → {image}; waiting for it to be ready"
        ));
        let ready = wait(retry, client, ns, stable, timeout).await?;
        progress(format!("promote: {ready}"));
        if let Some(router) = env.router.as_deref() {
            retry
                .run(None, bounded, || async move {
                    Ok(router.set_weight(Weight::ZERO).await?)
                })
                .await
                .map_err(|e| format!("promote: canary weight NOT set to 0%: {e}"))?;
            progress("promote: canary weight → 0% stored".to_string());
        }
        if let Some(canary) = self.plan.workload.canary.as_deref() {
            retry
                .run(None, bounded, || async move {
                    Ok(actions::scale(client, ns, canary, 0).await?)
                })
                .await
                .map_err(|e| format!("promote: {e}"))?;
            progress(format!("promote: deployment.apps/{canary} scaled to 0"));
        }
        Ok(format!("promoted: {stable} runs {image}"))
    }
}

/// `kubectl rollout status` until complete, failed or `timeout`. The wait names an API server
/// failure as its error rather than waiting on silently; a transient one is retried (and so
/// shown) here, within `timeout`, which bounds the whole wait.
async fn wait(
    retry: &Retry<'_>,
    client: &kube::Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let status = retry
        .run(Some(deadline), None, || async move {
            Ok(actions::status::wait_complete(client, ns, name, deadline).await?)
        })
        .await?;
    match status {
        RolloutStatus::Done(m) => Ok(m),
        RolloutStatus::Failed(m) => Err(m),
        RolloutStatus::Waiting(m) => Err(format!(
            "deployment.apps/{name} not rolled out within {}: {m}",
            crate::plan::duration::format_duration(timeout)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outage() -> Failure {
        Failure {
            transient: true,
            message: "the API server rejected it (503)".into(),
        }
    }

    #[tokio::test]
    async fn retries_report_each_attempt_and_a_cancel_ends_the_wait_at_once() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let retry = Retry {
            id: EffectId(1),
            actions: &tx,
            cancel: &cancel,
            retry_for: EMERGENCY_RETRY_FOR,
        };
        // Fails twice, then works.
        let mut left = 2;
        let done = retry
            .run(None, None, || {
                left -= 1;
                let result = if left >= 0 { Err(outage()) } else { Ok(()) };
                async move { result }
            })
            .await;
        assert_eq!(done, Ok(()));
        let notes: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|a| match a {
                Action::EffectProgress { note, .. } => note,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            notes,
            [
                "attempt 1 failed: the API server rejected it (503); retrying in 250 ms",
                "attempt 2 failed: the API server rejected it (503); retrying in 500 ms",
            ]
        );

        // Never heals: a cancel ends it without waiting out the 10 minutes.
        let started = std::time::Instant::now();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            stop.cancel();
        });
        let stopped: Result<(), String> = retry.run(None, None, || async { Err(outage()) }).await;
        let err = stopped.expect_err("cancelled");
        assert!(err.starts_with("stopped while retrying: "), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_lasting_failure_is_not_retried_and_until_bounds_the_retries() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let retry = Retry {
            id: EffectId(1),
            actions: &tx,
            cancel: &cancel,
            retry_for: STEP_RETRY_FOR,
        };
        let refused: Result<(), String> = retry
            .run(None, None, || async {
                Err(Failure {
                    transient: false,
                    message: "forbidden".into(),
                })
            })
            .await;
        assert_eq!(refused, Err("forbidden".to_string()));
        assert!(rx.try_recv().is_err(), "a lasting failure was retried");

        let until = Instant::now() + Duration::from_millis(900);
        let late: Result<(), String> = retry
            .run(Some(until), None, || async { Err(outage()) })
            .await;
        let err = late.expect_err("gives up");
        assert!(err.ends_with("(gave up after 3 attempts)"), "{err}");
        assert!(
            Instant::now() <= until,
            "waited past the wait's own deadline"
        );
    }
}
