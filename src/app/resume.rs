//! Continuing a run from its journal: the journal's inputs are applied again, in order, through
//! the same transitions that produced them ([`update::apply`]), which rebuilds the engine's
//! state. Then the work the journal shows as started without a result is checked against the
//! cluster before anything else happens.

use std::collections::BTreeMap;

use super::action::{Action, Effect, EffectId, Purpose};
use super::effects::EnvClients;
use super::event_loop::{Shell, handle};
use super::model::{App, Level, Origin};
use super::update;
use crate::engine::Origin as EngineOrigin;
use crate::engine::{AutoApprove, Work};
use crate::journal::record::Intent;
use crate::journal::{Line, Record};
use crate::plan::TrackName;

/// What a replay learnt besides the state.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Effects the journal shows as started (an intent line), as started.
    pub started: BTreeMap<u64, Intent>,
    /// Effects the journal has a result for.
    pub results: std::collections::BTreeSet<u64>,
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
                replayed.started.insert(intent.id, intent.clone());
            }
            // Gates passed by --auto-approve are passed again as they were.
            Record::Start(start) => {
                app.deployment.auto_approve = AutoApprove::from_name(&start.auto_approve);
            }
            record if record.is_input() => {
                if let Record::Result { id, .. } = record {
                    replayed.results.insert(*id);
                }
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

/// [`check`] with a bound: a cluster that does not answer is not waited on for ever before
/// the console is live (what can be done again is; what cannot is left to a person).
async fn checked(plan: &crate::plan::Plan, work: &Work, env: Option<&EnvClients>) -> Check {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
    match tokio::time::timeout(LIMIT, check(plan, work, env)).await {
        Ok(found) => found,
        Err(_) => match check(plan, work, None).await {
            Check::Unknown(why) => Check::Unknown(why),
            _ => Check::Again(format!(
                "the cluster did not answer within {} s: doing it again",
                LIMIT.as_secs()
            )),
        },
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
    // Started without a result, and not something the replayed plan has: a person must look.
    for (id, intent) in &replayed.started {
        if !replayed.results.contains(id) && !app.in_flight.contains_key(&EffectId(*id)) {
            app.push_log(
                Level::Error,
                format!(
                    "resume: the journal shows `{}` in {} started without a result, and the plan as replayed no longer has it: check it by hand",
                    intent.label, intent.environment
                ),
            );
        }
    }
    for (id, next) in settle_order(app, replayed) {
        let Some(effect) = replayed.produced.get(&id.0).cloned() else {
            continue;
        };
        let Effect::Work {
            environment, work, ..
        } = &effect
        else {
            continue;
        };
        match next {
            Next::Superseded => handle(
                app,
                Action::EffectDone {
                    id,
                    result: Err(format!(
                        "{}: stopped, a rollback took over before warroom stopped; not done again",
                        describe(work)
                    )),
                },
                shell,
            ),
            Next::Start => {
                app.push_log(
                    Level::Info,
                    format!(
                        "resume: starting {}, which was next when warroom stopped",
                        describe(work)
                    ),
                );
                shell.journal_changes(app);
                shell.dispatch(app, effect);
            }
            Next::Differs(intent) => {
                let why = format!(
                    "the journal's change ({} in {}) is not what replaying the journal gives ({} in {}): the plan or warroom changed since; check the cluster, then n",
                    describe(&intent.work),
                    intent.environment,
                    describe(work),
                    environment
                );
                handle(
                    app,
                    Action::EffectDone {
                        id,
                        result: Err(why),
                    },
                    shell,
                );
            }
            Next::Check => match checked(&plan, work, envs.get(environment)).await {
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
            },
        }
    }
}

/// What resume does with one piece of work left in flight by the replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Never started: start it.
    Start,
    /// Started, no result: look at the cluster first.
    Check,
    /// A step's or an operator's work that a rollback had taken over, or a pre-empted
    /// rollback's: not done again.
    Superseded,
    /// The journal started something else under this id: a person must look.
    Differs(Box<Intent>),
}

/// The work left in flight, in the order resume settles it (a rollback's first), and what to
/// do with each.
pub fn settle_order(app: &App, replayed: &Replayed) -> Vec<(EffectId, Next)> {
    let current_run = app.deployment.rollback.as_ref().map(|r| r.run);
    let mut out: Vec<(bool, EffectId, Next)> = Vec::new();
    for (id, origin) in &app.in_flight {
        // Work of a rollback that a later one pre-empted is as stale as a step's.
        let superseded = match origin {
            Origin::Engine(EngineOrigin::Rollback { run, .. }) => current_run != Some(*run),
            _ => current_run.is_some(),
        };
        let Some(Effect::Work {
            purpose,
            environment,
            work,
            ..
        }) = replayed.produced.get(&id.0)
        else {
            continue;
        };
        let rollback = *purpose == Purpose::Rollback;
        let next = match replayed.started.get(&id.0) {
            _ if superseded => Next::Superseded,
            None => Next::Start,
            Some(intent) if intent.work != *work || intent.environment != *environment => {
                Next::Differs(Box::new(intent.clone()))
            }
            Some(_) => Next::Check,
        };
        out.push((!rollback, *id, next));
    }
    out.sort_by_key(|(later, id, _)| (*later, *id));
    out.into_iter().map(|(_, id, next)| (id, next)).collect()
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::app::event_loop::intent_of;
    use crate::app::model::Target;
    use crate::app::update::update;
    use crate::journal::VERSION;
    use crate::plan::Weight;

    fn app(at: SystemTime) -> App {
        let plan =
            crate::plan::parse(Path::new("demo.yaml"), crate::cli::DEMO_PLAN).expect("demo plan");
        App::new(
            Arc::new(plan),
            Target {
                environment: "development".into(),
                namespace: "shop".into(),
                context: "sim-development".into(),
                kubeconfig_hint: None,
            },
            "alice".into(),
            at,
        )
    }

    fn key(c: char) -> Action {
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    /// Runs `keys` live, journaling inputs and intents as the event loop does; returns the
    /// journal's lines and the live app.
    fn live(keys: &[char]) -> (Vec<Line>, App) {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut app = app(t0);
        let mut lines = Vec::new();
        let push = |lines: &mut Vec<Line>, at, record| {
            let seq = lines.len() as u64;
            lines.push(Line {
                v: VERSION,
                seq,
                at,
                record,
            })
        };
        push(&mut lines, t0, Record::Tick);
        update(
            &mut app,
            Action::Traffic(crate::traffic::TrafficEvent::Weight(Weight::ZERO)),
        );
        for c in keys {
            let effects = update(&mut app, key(*c));
            for (at, record) in app.recorded.drain(..) {
                push(&mut lines, at, record);
            }
            for effect in &effects {
                if let Some(intent) = intent_of(&app, effect) {
                    push(&mut lines, app.now, Record::Intent(intent));
                }
            }
        }
        (lines, app)
    }

    #[test]
    fn replay_of_a_journal_rebuilds_the_live_state_and_its_work_in_flight() {
        let (lines, live) = live(&['n', 'n']);
        let mut replayed_app = app(SystemTime::UNIX_EPOCH);
        let replayed = replay(&mut replayed_app, &lines);
        assert_eq!(replayed_app.deployment.cursor, live.deployment.cursor);
        assert_eq!(replayed_app.deployment.status, live.deployment.status);
        assert_eq!(replayed_app.in_flight, live.in_flight);
        let order = settle_order(&replayed_app, &replayed);
        assert_eq!(order.len(), 1, "the weight 10 write: {order:?}");
        assert_eq!(order[0].1, Next::Check, "started, without a result");
    }

    #[test]
    fn after_a_rollback_its_work_goes_first_and_a_step_write_it_took_over_is_not_redone() {
        // n starts, n writes weight 10 (in flight), ! rolls back (weight 0 in flight).
        let (lines, _) = live(&['n', 'n', '!']);
        let mut replayed_app = app(SystemTime::UNIX_EPOCH);
        let replayed = replay(&mut replayed_app, &lines);
        let order = settle_order(&replayed_app, &replayed);
        assert_eq!(order.len(), 2, "{order:?}");
        assert!(
            matches!(
                replayed.produced.get(&order[0].0.0),
                Some(Effect::Work {
                    purpose: Purpose::Rollback,
                    ..
                })
            ),
            "the rollback's weight 0 first: {order:?}"
        );
        assert_eq!(order[0].1, Next::Check);
        assert_eq!(
            order[1].1,
            Next::Superseded,
            "weight 10 is not written again"
        );
    }

    #[test]
    fn work_decided_but_never_started_is_started_and_a_changed_intent_is_left_to_a_person() {
        let (mut lines, _) = live(&['n', 'n']);
        // Killed after the input, before the intent reached the journal.
        let intent = lines.pop().expect("the intent line");
        let mut a = app(SystemTime::UNIX_EPOCH);
        let replayed = replay(&mut a, &lines);
        assert_eq!(settle_order(&a, &replayed)[0].1, Next::Start);

        let Record::Intent(mut changed) = intent.record else {
            panic!("an intent: {intent:?}");
        };
        changed.work = Work::SetWeight {
            weight: Weight::clamped(40),
            emergency: false,
        };
        lines.push(Line {
            record: Record::Intent(changed),
            ..intent
        });
        let mut b = app(SystemTime::UNIX_EPOCH);
        let replayed = replay(&mut b, &lines);
        assert!(matches!(settle_order(&b, &replayed)[0].1, Next::Differs(_)));
    }
}
