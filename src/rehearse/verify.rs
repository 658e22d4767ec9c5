//! Reading the simulated cluster after a scenario, through the same clients a real cluster
//! gets, and comparing it with what the plan's steps or the tier's actions promise.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::cluster::actions::ConfigMapState;
use crate::cluster::client::Connection;
use crate::plan::{ConfigOp, Plan, Step, TierName, TrackName, WeightStep};

/// One environment's simulated cluster, connected.
pub struct Env<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub connection: &'a Connection,
    /// Its ConfigMaps as they were before the run.
    pub configmaps_before: &'a [ConfigMapState],
}

/// What the simulator was seeded with, for the images an `undo` must bring back.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub stable_image: String,
    /// The stable Deployment's revision before the current one.
    pub stable_previous: Option<String>,
}

/// One thing the cluster should be, checked: `weight 0 %: ✓` or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub what: String,
    /// None when it holds; else what was found.
    pub wrong: Option<String>,
    /// What to change in the plan when this is the plan's fault.
    pub fix: Option<String>,
}

impl Check {
    fn new(what: String, found: Result<(), String>) -> Check {
        Check {
            what,
            wrong: found.err(),
            fix: None,
        }
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Check {
        if self.wrong.is_some() {
            self.fix = Some(fix.into());
        }
        self
    }
}

/// The final value of a weight step.
fn weight_to(w: &WeightStep) -> u8 {
    match w {
        WeightStep::To(to) | WeightStep::Gradual { to, .. } => to.percent(),
    }
}

/// What the cluster should hold after `steps` ran in order, starting from `seeded`.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    weight: Option<u8>,
    images: BTreeMap<&'static str, String>,
    replicas: BTreeMap<&'static str, u32>,
    flags: BTreeMap<(String, String), String>,
    restore: bool,
}

fn track_key(t: TrackName) -> &'static str {
    match t {
        TrackName::Stable => "stable",
        TrackName::Canary => "canary",
    }
}

fn expect<'s>(
    plan: &Plan,
    steps: impl Iterator<Item = &'s Step>,
    seeded: &Seeded,
    stable_changed: bool,
) -> Expected {
    let new_image = plan.workload.image.clone().unwrap_or_default();
    let mut out = Expected::default();
    for step in steps {
        match step {
            Step::Weight(w) => out.weight = Some(weight_to(w)),
            Step::Image(t) => {
                out.images.insert(track_key(*t), new_image.clone());
            }
            Step::Promote(_) => {
                out.images.insert("stable", new_image.clone());
                out.weight = Some(0);
                out.replicas.insert("canary", 0);
            }
            Step::Flag(f) => {
                out.flags
                    .insert((f.configmap.clone(), f.key.clone()), f.value.clone());
            }
            Step::Scale(s) => {
                out.replicas.insert(track_key(s.track), s.replicas);
            }
            Step::Undo(TrackName::Stable) => {
                let back = if stable_changed {
                    Some(seeded.stable_image.clone())
                } else {
                    seeded.stable_previous.clone()
                };
                if let Some(image) = back {
                    out.images.insert("stable", image);
                }
            }
            Step::Config(ConfigOp::Restore) => {
                out.restore = true;
                out.flags.clear();
            }
            _ => {}
        }
    }
    out
}

/// Whether any of `steps` changes the stable Deployment's pod template (an `undo` then goes
/// back to the image seeded, not the revision before it).
pub fn changes_stable<'s>(mut steps: impl Iterator<Item = &'s Step>) -> bool {
    steps.any(|s| matches!(s, Step::Image(TrackName::Stable) | Step::Promote(_)))
}

/// After a straight run: the weight, images, replicas and flags each environment's steps set.
pub async fn after_plan(plan: &Plan, env: &Env<'_>, seeded: &Seeded) -> Vec<Check> {
    let steps = plan
        .phases
        .iter()
        .filter(|p| p.environment == env.name)
        .flat_map(|p| p.steps.iter());
    let expected = expect(plan, steps, seeded, false);
    compare(plan, env, &expected).await
}

/// After a tier: what each of its actions promises, and the canary weight at 0 whatever the
/// tier says; plus the plan-level mistakes a rehearsal can name.
pub async fn after_tier(
    plan: &Plan,
    tier: TierName,
    env: &Env<'_>,
    seeded: &Seeded,
    stable_changed: bool,
) -> Vec<Check> {
    let Some(t) = plan.rollback.tier(tier) else {
        return Vec::new();
    };
    let expected = expect(plan, t.actions.iter(), seeded, stable_changed);
    let mut checks = compare(plan, env, &expected).await;
    if plan.traffic.is_some() && expected.weight.is_none_or(|w| w > 0) {
        let check = match canary_weight(plan, env).await {
            Ok(0) => None,
            Ok(w) => Some(Check::new(
                "the canary takes no traffic".into(),
                Err(format!("the canary weight is {w}% after the tier")),
            )),
            Err(e) => Some(Check::new(
                "the canary takes no traffic".into(),
                Err(format!("cannot read the weight: {e}")),
            )),
        };
        checks.extend(check.map(|c| {
            c.with_fix(format!(
                "add `- weight: 0` as the first action of rollback.{}",
                tier.as_str()
            ))
        }));
    }
    checks
}

/// Mistakes in a tier that need no cluster to see: a `config: restore` with nothing to
/// restore.
pub fn tier_mistakes(plan: &Plan, tier: TierName, environment: &str) -> Vec<Check> {
    let Some(t) = plan.rollback.tier(tier) else {
        return Vec::new();
    };
    let restores = t
        .actions
        .iter()
        .any(|s| matches!(s, Step::Config(ConfigOp::Restore)));
    if restores && crate::preflight::configmaps_named(plan, environment).is_empty() {
        return vec![Check {
            what: format!("rollback.{}: `config: restore`", tier.as_str()),
            wrong: Some("restores nothing: the plan names no ConfigMap".into()),
            fix: Some(
                "name the ConfigMaps to restore with `flag` steps (their ConfigMaps are snapshotted when the run starts), or remove `config: restore`"
                    .into(),
            ),
        }];
    }
    Vec::new()
}

/// The canary weight in percent, read through the plan's own traffic router.
async fn canary_weight(plan: &Plan, env: &Env<'_>) -> Result<u8, String> {
    let router = crate::app::console::router_for(plan, env.connection, env.namespace)
        .map_err(|e| e.to_string())?;
    router
        .weight()
        .await
        .map(|w| w.percent())
        .map_err(|e| e.to_string())
}

async fn compare(plan: &Plan, env: &Env<'_>, expected: &Expected) -> Vec<Check> {
    let mut checks = Vec::new();
    if let (Some(want), Some(_)) = (expected.weight, plan.traffic.as_ref()) {
        let result = match canary_weight(plan, env).await {
            Ok(w) if w == want => Ok(()),
            Ok(w) => Err(format!("{w}%")),
            Err(e) => Err(format!("cannot read it: {e}")),
        };
        checks.push(Check::new(format!("canary weight {want}%"), result));
    }
    let deployments: Api<Deployment> =
        Api::namespaced(env.connection.client.clone(), env.namespace);
    for (track, image) in &expected.images {
        let name = deployment_name(plan, track);
        let found = deployments
            .get(&name)
            .await
            .map_err(|e| format!("cannot read it: {e}"))
            .map(|d| container_image(plan, &d));
        let result = match found {
            Ok(Some(i)) if &i == image => Ok(()),
            Ok(Some(i)) => Err(i),
            Ok(None) => Err("no such container".into()),
            Err(e) => Err(e),
        };
        checks.push(Check::new(format!("{track} {name} runs {image}"), result));
    }
    for (track, want) in &expected.replicas {
        let name = deployment_name(plan, track);
        let found = deployments
            .get(&name)
            .await
            .map(|d| d.spec.and_then(|s| s.replicas).unwrap_or(1));
        let result = match found {
            Ok(n) if n == i32::try_from(*want).unwrap_or(i32::MAX) => Ok(()),
            Ok(n) => Err(format!("{n} replicas")),
            Err(e) => Err(format!("cannot read it: {e}")),
        };
        checks.push(Check::new(
            format!("{track} {name} at {want} replicas"),
            result,
        ));
    }
    if !expected.flags.is_empty() || expected.restore {
        let names = crate::preflight::configmaps_named(plan, env.name);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let now = crate::cluster::actions::configmap::snapshot(
            &env.connection.client,
            env.namespace,
            &refs,
        )
        .await;
        match now {
            Err(e) => checks.push(Check::new(
                "the ConfigMaps".into(),
                Err(format!("cannot read them: {e}")),
            )),
            Ok(now) => {
                let data: BTreeMap<&str, &BTreeMap<String, String>> = now
                    .items
                    .iter()
                    .map(|c| (c.name.as_str(), &c.data))
                    .collect();
                if expected.restore {
                    for before in env.configmaps_before {
                        let result = match data.get(before.name.as_str()) {
                            Some(d) if **d == before.data => Ok(()),
                            Some(d) => Err(format!("{d:?}")),
                            None => Err("missing".into()),
                        };
                        checks.push(Check::new(
                            format!(
                                "ConfigMap {} as snapshotted: {:?}",
                                before.name, before.data
                            ),
                            result,
                        ));
                    }
                }
                for ((map, key), want) in &expected.flags {
                    let found = data.get(map.as_str()).and_then(|d| d.get(key));
                    let result = match found {
                        Some(v) if v == want => Ok(()),
                        Some(v) => Err(format!("{v:?}")),
                        None => Err("not set".into()),
                    };
                    checks.push(Check::new(format!("{map}.{key} = {want:?}"), result));
                }
            }
        }
    }
    checks
}

fn deployment_name(plan: &Plan, track: &str) -> String {
    if track == "stable" {
        plan.workload.name.clone()
    } else {
        plan.workload
            .canary
            .clone()
            .unwrap_or_else(|| format!("{}-canary", plan.workload.name))
    }
}

/// The image of the plan's container (its first when the plan names none).
fn container_image(plan: &Plan, d: &Deployment) -> Option<String> {
    let containers = &d.spec.as_ref()?.template.spec.as_ref()?.containers;
    let c = match &plan.workload.container {
        Some(name) => containers.iter().find(|c| &c.name == name)?,
        None => containers.first()?,
    };
    c.image.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> Seeded {
        Seeded {
            stable_image: "r/c:2.4.0".into(),
            stable_previous: Some("r/c:2.3.0".into()),
        }
    }

    fn steps(yaml: &str) -> Vec<Step> {
        serde_saphyr::from_str(yaml).expect("steps")
    }

    #[test]
    fn promote_sets_weight_zero_the_new_image_and_no_canary() {
        let plan = crate::plan::parse(std::path::Path::new("demo.yaml"), crate::cli::DEMO_PLAN)
            .expect("demo plan");
        let s = steps("- weight: 50\n- promote: {}\n");
        let e = expect(&plan, s.iter(), &seeded(), false);
        assert_eq!(e.weight, Some(0));
        assert_eq!(e.images.get("stable"), plan.workload.image.as_ref());
        assert_eq!(e.replicas.get("canary"), Some(&0));
    }

    #[test]
    fn undo_goes_back_one_revision_or_to_the_seeded_image_after_a_change() {
        let plan = crate::plan::parse(std::path::Path::new("demo.yaml"), crate::cli::DEMO_PLAN)
            .expect("demo plan");
        let s = steps("- undo: stable\n");
        let back = expect(&plan, s.iter(), &seeded(), false);
        assert_eq!(
            back.images.get("stable").map(String::as_str),
            Some("r/c:2.3.0")
        );
        let after_promote = expect(&plan, s.iter(), &seeded(), true);
        assert_eq!(
            after_promote.images.get("stable").map(String::as_str),
            Some("r/c:2.4.0")
        );
    }
}
