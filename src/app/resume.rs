//! Continuing a run from its journal: the journal's inputs are applied again, in order, through
//! the same transitions that produced them ([`update::apply`]), which rebuilds the engine's
//! state. Then the work the journal shows as started without a result is checked against the
//! cluster before anything else happens.

use std::collections::{BTreeMap, BTreeSet};

use super::action::{Action, Effect, EffectId};
use super::effects::EnvClients;
use super::event_loop::{Shell, handle};
use super::model::{App, Level};
use super::update;
use crate::engine::{AutoApprove, Work};
use crate::journal::{Line, Record};
use crate::plan::TrackName;

/// What a replay learnt besides the state.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Effects the journal shows as started (an intent line).
    pub started: BTreeSet<u64>,
    /// Every piece of work the replayed transitions asked for, by id.
    pub produced: BTreeMap<u64, Effect>,
    /// Inputs applied.
    pub inputs: usize,
}

/// Applies the journal's inputs to a fresh `app`.
pub fn replay(app: &mut App, lines: &[Line]) -> Replayed {
    let mut replayed = Replayed::default();
    for line in lines {
        match &line.record {
            Record::Intent(intent) => {
                replayed.started.insert(intent.id);
            }
            // Gates passed by --auto-approve are passed again as they were.
            Record::Start(start) => {
                app.deployment.auto_approve = AutoApprove::from_name(&start.auto_approve);
            }
            record if record.is_input() => {
                replayed.inputs += 1;
                let mut effects = update::apply(app, line.at, record.clone());
                effects.extend(update::follow(app));
                for effect in effects {
                    if let Some(id) = effect.id() {
                        replayed.produced.insert(id.0, effect);
                    }
                }
            }
            _ => {}
        }
    }
    replayed
}

/// What the cluster says about work that has no result in the journal.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// It had happened.
    Done(String),
    /// Safe to do again (or not done): it is started again.
    Again(String),
    /// Not safe to repeat and not knowable: left for a person.
    Unknown(String),
}

/// Looks at the cluster for one piece of work started before the stop.
pub async fn check(plan: &crate::plan::Plan, work: &Work, env: Option<&EnvClients>) -> Check {
    match work {
        Work::SetWeight { weight, .. } => {
            let Some(router) = env.and_then(|e| e.router.as_ref()) else {
                return Check::Again(format!("weight {weight}: writing it again"));
            };
            match router.weight().await {
                Ok(now) if now == *weight => {
                    Check::Done(format!("canary weight read back: {now}, as intended"))
                }
                Ok(now) => Check::Again(format!(
                    "canary weight read back: {now}, not {weight}: writing {weight} again"
                )),
                Err(e) => Check::Again(format!(
                    "canary weight could not be read back ({e}): writing {weight} again"
                )),
            }
        }
        Work::SetImage { track, .. } => {
            let wanted = plan.workload.image.as_deref().unwrap_or("");
            let name = deployment_name(plan, *track);
            let found = match env {
                Some(env) => current_image(env, &name).await,
                None => None,
            };
            match found {
                Some(image) if image == wanted => Check::Again(format!(
                    "deployment {name} already has {image}; following its rollout to the end"
                )),
                Some(image) => Check::Again(format!(
                    "deployment {name} still has {image}: setting {wanted} again"
                )),
                None => Check::Again(format!(
                    "deployment {name}'s image could not be read: setting {wanted} again"
                )),
            }
        }
        Work::Run { cmd, .. } => Check::Unknown(format!(
            "`{cmd}` has no recorded result: warroom stopped while it ran, so it is not run again by itself; check what it did, then n runs it again"
        )),
        Work::Undo { track } => {
            let name = deployment_name(plan, *track);
            Check::Unknown(format!(
                "rollout undo of {name} has no recorded result: warroom stopped while it ran, and a second undo would go back one more revision; check `kubectl rollout history deployment/{name}`, then n runs it again"
            ))
        }
        Work::WaitRollout { .. }
        | Work::Scale { .. }
        | Work::SetFlag { .. }
        | Work::SnapshotConfig
        | Work::RestoreConfig
        | Work::Promote { .. }
        | Work::Notify { .. } => Check::Again(
            "no recorded result; it leaves the cluster the same however often it runs, so it runs again"
                .to_string(),
        ),
    }
}

fn deployment_name(plan: &crate::plan::Plan, track: TrackName) -> String {
    match track {
        TrackName::Stable => plan.workload.name.clone(),
        TrackName::Canary => plan.workload.canary.clone().unwrap_or_default(),
    }
}

async fn current_image(env: &EnvClients, name: &str) -> Option<String> {
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(env.client.clone(), &env.namespace);
    let d = api.get(name).await.ok()?;
    let containers = d.spec?.template.spec?.containers;
    containers.into_iter().next()?.image
}

/// Settles what the replay left in flight: work never started is started; work started
/// without a result is checked first. Runs before the event loop takes any other action.
pub async fn continue_in_flight(
    app: &mut App,
    shell: &mut Shell,
    replayed: &Replayed,
    envs: &BTreeMap<String, EnvClients>,
) {
    let plan = app.plan.clone();
    let waiting: Vec<EffectId> = app.in_flight.keys().copied().collect();
    for id in waiting {
        let Some(effect) = replayed.produced.get(&id.0).cloned() else {
            continue;
        };
        let Effect::Work {
            environment, work, ..
        } = &effect
        else {
            continue;
        };
        if !replayed.started.contains(&id.0) {
            app.push_log(
                Level::Info,
                format!(
                    "resume: starting {}, which was next when warroom stopped",
                    describe(work)
                ),
            );
            shell.journal_changes(app);
            shell.dispatch(app, effect);
            continue;
        }
        match check(&plan, work, envs.get(environment)).await {
            Check::Done(note) => handle(
                app,
                Action::EffectDone {
                    id,
                    result: Ok(format!("resume: {note}")),
                },
                shell,
            ),
            Check::Again(note) => {
                app.push_log(Level::Warn, format!("resume: {}: {note}", describe(work)));
                shell.journal_changes(app);
                shell.dispatch(app, effect);
            }
            Check::Unknown(why) => handle(
                app,
                Action::EffectDone {
                    id,
                    result: Err(why),
                },
                shell,
            ),
        }
    }
}

fn describe(work: &Work) -> String {
    match work {
        Work::SetWeight { weight, .. } => format!("weight {weight}"),
        Work::SetImage { track, .. } => format!("image of the {} track", track.as_str()),
        Work::WaitRollout { track, .. } => format!("wait for the {} rollout", track.as_str()),
        Work::Scale { track, replicas } => format!("scale {} to {replicas}", track.as_str()),
        Work::Undo { track } => format!("undo of the {} track", track.as_str()),
        Work::SetFlag {
            configmap,
            key,
            value,
            ..
        } => format!("flag {configmap}.{key} = {value}"),
        Work::SnapshotConfig => "config snapshot".to_string(),
        Work::RestoreConfig => "config restore".to_string(),
        Work::Promote { .. } => "promote".to_string(),
        Work::Run { cmd, .. } => format!("run `{cmd}`"),
        Work::Notify { text } => format!("notify: {text}"),
    }
}
