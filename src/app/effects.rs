//! The effect runner: carries out what `update` asked for, with the clients it owns (one set
//! per environment), and reports every result back as an action. Decides nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

use super::action::{Action, Effect, EffectId, Purpose};
use super::carry::{self, Carry};
use crate::engine::Work;
use crate::plan::{Plan, Weight};
use crate::traffic::{RouterError, TrafficRouter};

/// One environment's clients, as the effect runner uses them.
#[derive(Clone)]
pub struct EnvClients {
    pub name: String,
    pub namespace: String,
    pub context: String,
    pub client: kube::Client,
    /// `None` for plans without a traffic router.
    pub router: Option<Arc<dyn TrafficRouter>>,
    /// A kubeconfig that reaches only this environment's context, for `run` steps.
    pub kubeconfig: Option<std::path::PathBuf>,
}

/// Hands effects to the tasks that perform them.
#[derive(Clone)]
pub struct EffectRunner {
    weights: BTreeMap<String, UnboundedSender<WeightWrite>>,
    carry: Arc<Carry>,
    actions: UnboundedSender<Action>,
    /// Cancelled when a rollback takes over; step work in flight watches it.
    steps: Arc<Mutex<CancellationToken>>,
    /// Cancelled when an immediate rollback pre-empts another; that rollback's work watches it.
    rollbacks: Arc<Mutex<CancellationToken>>,
}

#[derive(Debug)]
struct WeightWrite {
    id: EffectId,
    weight: Weight,
    emergency: bool,
}

impl EffectRunner {
    /// Starts the runner's tasks; results go to `actions`. `snapshots` are the ConfigMaps as
    /// they were when the run started, per environment.
    pub fn start(
        plan: Arc<Plan>,
        plan_dir: std::path::PathBuf,
        envs: Vec<EnvClients>,
        snapshots: carry::Snapshots,
        actions: UnboundedSender<Action>,
    ) -> EffectRunner {
        let mut weights = BTreeMap::new();
        for env in &envs {
            if let Some(router) = &env.router {
                let (tx, rx) = unbounded_channel();
                tokio::spawn(weight_writer(router.clone(), rx, actions.clone()));
                weights.insert(env.name.clone(), tx);
            }
        }
        let carry = Arc::new(Carry::new(plan, plan_dir, envs, snapshots));
        EffectRunner {
            weights,
            carry,
            actions,
            steps: Arc::new(Mutex::new(CancellationToken::new())),
            rollbacks: Arc::new(Mutex::new(CancellationToken::new())),
        }
    }

    /// A rehearsal: see [`Carry::set_rehearsal`].
    pub fn set_rehearsal(&self) {
        self.carry.set_rehearsal();
    }

    /// `notify` steps send through `notifier` from now on.
    pub fn set_notifier(&self, notifier: crate::notify::Notifier) {
        self.carry.set_notifier(notifier);
    }

    fn current(token: &Mutex<CancellationToken>) -> CancellationToken {
        token
            .lock()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Cancels what watches `token` and puts a fresh one in its place for work to come.
    fn renew(token: &Mutex<CancellationToken>) {
        let mut guard = token.lock().unwrap_or_else(|e| e.into_inner());
        guard.cancel();
        *guard = CancellationToken::new();
    }

    pub fn run(&self, effect: Effect) {
        match effect {
            Effect::CancelSteps => Self::renew(&self.steps),
            Effect::CancelRollback => Self::renew(&self.rollbacks),
            // Sources are the event loop's; the runner has nothing to do.
            Effect::Watch { .. } => {}
            Effect::Drill {
                endpoint,
                body,
                label,
            } => {
                let actions = self.actions.clone();
                tokio::spawn(async move {
                    let result = super::drills::send(&endpoint, body.as_ref()).await;
                    let _ = actions.send(Action::DrillDone { label, result });
                });
            }
            Effect::Work {
                id,
                environment,
                work: Work::SetWeight { weight, emergency },
                ..
            } => match self.weights.get(&environment) {
                // The writer only stops when the runner is dropped, so a failed send means the
                // console is shutting down and there is nobody to report to.
                Some(tx) => {
                    let _ = tx.send(WeightWrite {
                        id,
                        weight,
                        emergency,
                    });
                }
                None => {
                    let _ = self.actions.send(Action::EffectDone {
                        id,
                        result: Err(format!(
                            "environment {environment} has no traffic router to set the weight on"
                        )),
                    });
                }
            },
            Effect::Work {
                id,
                environment,
                phase,
                purpose,
                work,
            } => {
                let carry = self.carry.clone();
                let actions = self.actions.clone();
                let cancel = match purpose {
                    Purpose::Step => Self::current(&self.steps),
                    Purpose::Rollback => Self::current(&self.rollbacks),
                    Purpose::Operator => CancellationToken::new(),
                };
                tokio::spawn(async move {
                    let work_fut =
                        carry.run(id, &environment, &phase, purpose, work, &actions, &cancel);
                    let result = tokio::select! {
                        r = work_fut => r,
                        () = cancel.cancelled() => Err(match purpose {
                            Purpose::Rollback => "stopped: an immediate rollback took over",
                            _ => "stopped: a rollback took over",
                        }.to_string()),
                    };
                    let _ = actions.send(Action::EffectDone { id, result });
                });
            }
        }
    }
}

/// How long a rollback write (and a rollback's other idempotent work, see [`Carry::run`]) keeps
/// retrying a failing API server before it gives up and says so.
/// Long enough to ride out an API server restart or upgrade; the gauge shows `→ 0%` meanwhile.
pub(super) const EMERGENCY_RETRY_FOR: Duration = Duration::from_secs(10 * 60);

/// Longest one weight write may take. kube-rs sets no read timeout, so a request on a dead
/// connection could otherwise wait for TCP to give up (minutes) and hold every write behind it,
/// a rollback included.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One write, bounded by [`WRITE_TIMEOUT`].
async fn set_weight_bounded(router: &dyn TrafficRouter, weight: Weight) -> Result<(), RouterError> {
    match tokio::time::timeout(WRITE_TIMEOUT, router.set_weight(weight)).await {
        Ok(result) => result,
        Err(_) => Err(RouterError::Api(format!(
            "no answer from the API server within {} s",
            WRITE_TIMEOUT.as_secs()
        ))),
    }
}

/// How long a plan step's or an operator's weight write (and a step's other idempotent work, see
/// [`Carry::run`]) keeps retrying a failing API server:
/// long enough to ride out a short outage or a restart, short enough that a run does not sit
/// on a step nobody can see progressing (each failed attempt is logged).
pub(super) const STEP_RETRY_FOR: Duration = Duration::from_secs(60);

/// First wait between attempts; it doubles up to [`LONGEST_RETRY_WAIT`].
pub(super) const FIRST_RETRY_WAIT: Duration = Duration::from_millis(250);
pub(super) const LONGEST_RETRY_WAIT: Duration = Duration::from_secs(4);

/// One weight write, retried with backoff while the API server fails (an outage, a dropped
/// connection), each failure reported as it happens, so a write made during a blip lands when
/// the server is back: a rollback's for [`EMERGENCY_RETRY_FOR`], any other for
/// [`STEP_RETRY_FOR`]. A malformed traffic object or refused permissions are not retried:
/// waiting will not change them. A rollback's write never waits behind another's retries: one
/// that arrives meanwhile ends them (the write is superseded) and goes next.
async fn write_with_retries(
    router: &dyn TrafficRouter,
    write: &WeightWrite,
    actions: &UnboundedSender<Action>,
    rx: &mut UnboundedReceiver<WeightWrite>,
    queue: &mut VecDeque<WeightWrite>,
) -> Result<(), RouterError> {
    let retry_for = if write.emergency {
        EMERGENCY_RETRY_FOR
    } else {
        STEP_RETRY_FOR
    };
    let deadline = Instant::now() + retry_for;
    let mut delay = FIRST_RETRY_WAIT;
    let mut attempt = 1;
    let superseded = || RouterError::Api("superseded by rollback".to_string());
    let mut closed = false;
    loop {
        match set_weight_bounded(router, write.weight).await {
            Ok(()) => return Ok(()),
            Err(e @ (RouterError::Malformed { .. } | RouterError::Refused(_))) => return Err(e),
            Err(e) if Instant::now() + delay >= deadline => return Err(e),
            Err(_) if !write.emergency && queue.iter().any(|w| w.emergency) => {
                return Err(superseded());
            }
            Err(e) => {
                let what = if write.emergency {
                    "rollback"
                } else {
                    "weight"
                };
                let _ = actions.send(Action::EffectProgress {
                    id: write.id,
                    note: format!(
                        "{what} write attempt {attempt} failed: {e}; retrying in {} ms",
                        delay.as_millis()
                    ),
                });
                let wait = tokio::time::sleep(delay);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        () = &mut wait => break,
                        next = rx.recv(), if !closed => match next {
                            Some(w) => {
                                let urgent = w.emergency;
                                queue.push_back(w);
                                if urgent && !write.emergency {
                                    return Err(superseded());
                                }
                            }
                            // The run has ended and nobody waits for the result: a plan
                            // step's write is not pressed on a server nobody watches any more
                            // (a rollback's still is: it makes things safe).
                            None if !write.emergency => {
                                return Err(RouterError::Api(
                                    "not retried: the run has ended".to_string(),
                                ));
                            }
                            None => closed = true,
                        },
                    }
                }
                delay = (delay * 2).min(LONGEST_RETRY_WAIT);
                attempt += 1;
            }
        }
    }
}

/// Writes weights one at a time, in order, so two quick `+` presses end at +2 steps and not at
/// whichever request happened to land last.
async fn weight_writer(
    router: Arc<dyn TrafficRouter>,
    mut rx: UnboundedReceiver<WeightWrite>,
    actions: UnboundedSender<Action>,
) {
    let mut queue: VecDeque<WeightWrite> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv().await {
                Some(w) => queue.push_back(w),
                None => return,
            }
        }
        while let Ok(w) = rx.try_recv() {
            queue.push_back(w);
        }
        if let Some(pos) = queue.iter().rposition(|w| w.emergency) {
            for dropped in queue.drain(..pos) {
                let _ = actions.send(Action::EffectDone {
                    id: dropped.id,
                    result: Err(format!(
                        "weight {} not written: superseded by rollback",
                        dropped.weight
                    )),
                });
            }
        }
        let Some(write) = queue.pop_front() else {
            continue;
        };
        let started = Instant::now();
        let result =
            write_with_retries(router.as_ref(), &write, &actions, &mut rx, &mut queue).await;
        let result = result
            .map(|()| {
                format!(
                    "canary weight {} stored on {} ({} ms)",
                    write.weight,
                    router.describe(),
                    started.elapsed().as_millis()
                )
            })
            .map_err(|e| format!("canary weight {} NOT set: {e}", write.weight));
        if actions
            .send(Action::EffectDone {
                id: write.id,
                result,
            })
            .is_err()
        {
            return;
        }
    }
}
