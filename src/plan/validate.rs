//! Checks beyond types: what a well-typed plan can still get wrong (unknown environments, bad
//! PromQL, missing tiers, risky gaps), each located in the source. Reads the plan; changes nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::duration::format_duration;
use super::load::Severity;
use super::locate::{Doc, Pos, Seg};
use super::model::{
    BreachAction, Plan, RollbackTier, RunStep, Step, VsStable, WaitStep, WeightStep,
};
use super::recover::Skipped;
use super::suggest;
use super::template;
use crate::path;

use super::template::QUERY_VARIABLES;

/// One finding of validation, located in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Where it is.
    pub pos: Pos,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and what to do.
    pub message: String,
}

struct Checker<'a> {
    doc: &'a Doc,
    skipped: &'a Skipped,
    out: Vec<Finding>,
}

impl Checker<'_> {
    fn error(&mut self, pos: Pos, message: String) {
        self.out.push(Finding {
            pos,
            severity: Severity::Error,
            message,
        });
    }

    fn warning(&mut self, pos: Pos, message: String) {
        self.out.push(Finding {
            pos,
            severity: Severity::Warning,
            message,
        });
    }

    fn positive(&mut self, d: Duration, path: &[Seg<'_>], what: &str) {
        if d.is_zero() {
            let pos = self.doc.value(path);
            self.error(
                pos,
                format!("{what} is 0s; a zero duration does nothing here, give a positive one"),
            );
        }
    }
}

/// All findings for a plan that parsed into types; `doc` locates them.
pub fn validate(plan: &Plan, doc: &Doc) -> Vec<Finding> {
    validate_recovered(plan, doc, &Skipped::default())
}

/// All findings for a plan recovered from a file that did not parse into types: the `skipped`
/// steps stand as placeholders, and nothing is concluded from what they might have been.
pub fn validate_recovered(plan: &Plan, doc: &Doc, skipped: &Skipped) -> Vec<Finding> {
    let mut c = Checker {
        doc,
        skipped,
        out: Vec::new(),
    };
    if plan.version != 1 {
        let pos = doc.value(&path!["version"]);
        c.error(
            pos,
            format!(
                "unsupported plan version {}; this warroom reads version 1",
                plan.version
            ),
        );
    }
    check_strategy(plan, &mut c);
    check_environments(plan, &mut c);
    check_metrics(plan, &mut c);
    check_phases(plan, &mut c);
    check_rollback(plan, &mut c);
    check_notify(plan, &mut c);
    c.out
        .sort_by_key(|f| (f.pos.line, f.pos.column, f.severity == Severity::Warning));
    c.out
}

fn check_strategy(plan: &Plan, c: &mut Checker<'_>) {
    if plan.strategy.needs_router() && plan.traffic.is_none() {
        let pos = c.doc.value(&path!["strategy"]);
        let name = plan.strategy.as_str();
        c.error(
            pos,
            format!(
                "strategy {name} moves traffic but the plan has no `traffic.router`; add a `traffic:` section (router: gateway-api, istio, nginx, smi or replicas)"
            ),
        );
    }
    if let Some(traffic) = &plan.traffic
        && traffic.step.percent() == 0
    {
        let pos = c.doc.value(&path!["traffic", "step"]);
        c.error(
            pos,
            "traffic.step is 0; + and - would not move the weight".into(),
        );
    }
}

fn check_environments(plan: &Plan, c: &mut Checker<'_>) {
    for (name, env) in &plan.environments {
        if let Some(url) = &env.prometheus
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            let pos = c.doc.value(&path!["environments", name, "prometheus"]);
            c.error(
                pos,
                format!("prometheus URL `{url}` of environment `{name}` must start with http:// or https://"),
            );
        }
        if env.bearer_token_file.is_some() && env.basic_auth_file.is_some() {
            let pos = c.doc.key(&path!["environments", name, "basic_auth_file"]);
            c.error(
                pos,
                format!("environment `{name}` sets both bearer_token_file and basic_auth_file; Prometheus gets one kind of credentials, keep one"),
            );
        }
    }
}

fn check_metrics(plan: &Plan, c: &mut Checker<'_>) {
    let m = &plan.metrics;
    c.positive(
        m.interval.get(),
        &path!["metrics", "interval"],
        "metrics.interval",
    );
    c.positive(
        m.history.get(),
        &path!["metrics", "history"],
        "metrics.history",
    );
    c.positive(m.rate.get(), &path!["metrics", "rate"], "metrics.rate");
    if m.on_breach.after == 0 {
        let pos = c.doc.value(&path!["metrics", "on_breach", "after"]);
        c.error(
            pos,
            "metrics.on_breach.after is 0; it counts breaching samples, use 1 or more".into(),
        );
    }
    if m.no_data.after == 0 {
        let pos = c.doc.value(&path!["metrics", "no_data", "after"]);
        c.error(
            pos,
            "metrics.no_data.after is 0; it counts empty samples, use 1 or more".into(),
        );
    }
    let placeholder_rate = format_duration(m.rate.get());
    for (name, query) in &m.queries {
        let at = path!["metrics", "queries", name];
        let value_pos = c.doc.value(&at);
        let mut unknown = false;
        for (_, var) in template::placeholders(query) {
            if !QUERY_VARIABLES.contains(&var.as_str()) {
                unknown = true;
                let pos = c.doc.find_on_line(value_pos, &format!("{{{{{var}"));
                let hint = suggest::hint(&var, QUERY_VARIABLES);
                c.error(
                    pos,
                    format!(
                        "unknown template variable `{{{{{var}}}}}` in metrics.queries.{name}{hint}; known: {}",
                        QUERY_VARIABLES.join(", ")
                    ),
                );
            }
        }
        if unknown {
            continue;
        }
        let vars = template::query_vars(
            "placeholder-namespace",
            &plan.service,
            "canary",
            &placeholder_rate,
        );
        match template::expand(query, &vars) {
            Err(e) => c.error(value_pos, format!("metrics.queries.{name}: {e}")),
            Ok(expanded) => {
                if let Err(e) = parse_promql(&expanded) {
                    c.error(
                        value_pos,
                        format!("metrics.queries.{name} is not valid PromQL: {e}"),
                    );
                }
            }
        }
    }
    for (name, threshold) in &m.thresholds {
        if !m.queries.contains_key(name) {
            let pos = c.doc.key(&path!["metrics", "thresholds", name]);
            let hint = suggest::hint(name, m.queries.keys().map(String::as_str));
            c.error(
                pos,
                format!("threshold for `{name}`, which is not a metric in metrics.queries{hint}"),
            );
        }
        if threshold.max.is_none() && threshold.min.is_none() && threshold.vs_stable.is_none() {
            let pos = c.doc.value(&path!["metrics", "thresholds", name]);
            c.error(
                pos,
                format!("threshold `{name}` has neither max nor min (nor vs_stable)"),
            );
        }
        if let Some(vs) = &threshold.vs_stable {
            check_vs_stable(plan, name, vs, c);
        }
    }
    if m.on_breach.action == BreachAction::Rollback
        && plan.rollback.tier(m.on_breach.tier).is_none()
    {
        let tier = m.on_breach.tier.as_str();
        let pos = c.doc.value(&path!["metrics", "on_breach", "tier"]);
        c.error(
            pos,
            format!("on_breach rolls back with tier `{tier}`, but the plan has no rollback.{tier}; add it or name a tier that exists"),
        );
    }
    c.positive(
        m.on_breach.countdown.get(),
        &path!["metrics", "on_breach", "countdown"],
        "metrics.on_breach.countdown",
    );
}

fn check_vs_stable(plan: &Plan, name: &str, vs: &VsStable, c: &mut Checker<'_>) {
    let at = path!["metrics", "thresholds", name, "vs_stable"];
    if plan.workload.canary.is_none() {
        let pos = c.doc.key(&at);
        c.error(
            pos,
            format!("threshold `{name}` compares with the stable track, but the plan has no `workload.canary` to compare; remove vs_stable or add a canary"),
        );
    }
    if vs.ratio.is_none() && vs.delta.is_none() {
        let pos = c.doc.value(&at);
        c.error(
            pos,
            format!("vs_stable of `{name}` has neither ratio nor delta; give one or both (`{{ ratio: 2, delta: 0.005 }}`)"),
        );
    }
    let bounds = [
        ("ratio", vs.ratio, 1.0, "≥ 1 (2 means twice stable)"),
        ("delta", vs.delta, 0.0, "≥ 0, in the metric's unit"),
    ];
    for (key, value, least, rule) in bounds {
        if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= least)) {
            let pos = c
                .doc
                .value(&path!["metrics", "thresholds", name, "vs_stable", key]);
            c.error(
                pos,
                format!("vs_stable.{key} of `{name}` is {v}; it must be a finite number {rule}"),
            );
        }
    }
}

/// promql-parser on one query, with its rare panics turned into errors.
fn parse_promql(query: &str) -> Result<(), String> {
    if query.len() > 8192 {
        return Err("query is longer than 8192 bytes".into());
    }
    match crate::panics::caught(|| promql_parser::parser::parse(query)) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.lines().next().unwrap_or_default().to_string()),
        Err(_) => Err("the PromQL parser failed on this query".into()),
    }
}

fn check_phases(plan: &Plan, c: &mut Checker<'_>) {
    let mut seen: HashSet<&str> = HashSet::new();
    let two_samples = plan.metrics.interval.get() * 2;
    // Weight is per environment: each phase's environment is its own cluster and route. `None`
    // after a step that did not parse: it may have set any weight.
    let mut weights: HashMap<&str, Option<u8>> = HashMap::new();
    for (i, phase) in plan.phases.iter().enumerate() {
        let weight = weights.entry(phase.environment.as_str()).or_insert(Some(0));
        if !seen.insert(phase.name.as_str()) {
            let pos = c.doc.value(&path!["phases", i, "name"]);
            c.error(
                pos,
                format!(
                    "duplicate phase name `{}`; phase names must be unique",
                    phase.name
                ),
            );
        }
        if !plan.environments.contains_key(&phase.environment) {
            let pos = c.doc.value(&path!["phases", i, "environment"]);
            let hint = suggest::hint(
                &phase.environment,
                plan.environments.keys().map(String::as_str),
            );
            let known: Vec<&str> = plan.environments.keys().map(String::as_str).collect();
            c.error(
                pos,
                format!(
                    "phase `{}` runs in unknown environment `{}`{hint}; defined: {}",
                    phase.name,
                    phase.environment,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        if let Some(w) = &phase.window
            && w.to <= w.from
        {
            let pos = c.doc.value(&path!["phases", i, "window", "to"]);
            c.error(
                pos,
                format!(
                    "window of phase `{}` ends at {} which is not after its start {}",
                    phase.name, w.to, w.from
                ),
            );
        }
        if let Some(d) = phase.rollback_window {
            c.positive(
                d.get(),
                &path!["phases", i, "rollback_window"],
                "rollback_window",
            );
        }
        // A step that did not parse may have been the approval gate.
        if phase.effective_risk(plan.risk).wants_approval()
            && !phase.has_approval_gate()
            && !c.skipped.any_in_phase(i)
        {
            let pos = c.doc.value(&path!["phases", i, "name"]);
            c.warning(
                pos,
                format!(
                    "phase `{}` is {} risk but has no approval gate; add `approval: [name]` or an `approve` step (or set the phase's `risk`)",
                    phase.name,
                    format!("{:?}", phase.effective_risk(plan.risk)).to_lowercase()
                ),
            );
        }
        for (j, step) in phase.steps.iter().enumerate() {
            if c.skipped.step(i, j) {
                *weight = None;
                continue;
            }
            let at = path!["phases", i, "steps", j];
            check_step(plan, step, &at, c);
            match step {
                Step::Hold(d) if !d.get().is_zero() && d.get() < two_samples => {
                    let pos = c.doc.value(&path!["phases", i, "steps", j, "hold"]);
                    c.warning(
                        pos,
                        format!(
                            "hold {d} is shorter than two metric intervals ({}); it cannot see a breach twice",
                            format_duration(two_samples)
                        ),
                    );
                }
                Step::Weight(w) => {
                    let target = w.target().percent();
                    let explained = matches!(
                        w,
                        WeightStep::Gradual {
                            comment: Some(_),
                            ..
                        }
                    ) || c.doc.has_comment_on(c.doc.value(&at).line);
                    if let Some(before) = *weight
                        && target < before
                        && !explained
                    {
                        let pos = c.doc.value(&path!["phases", i, "steps", j, "weight"]);
                        c.warning(
                            pos,
                            format!(
                                "weight goes down from {before}% to {target}% without a comment; say why (a `# comment` on the line or `comment:`)"
                            ),
                        );
                    }
                    *weight = Some(target);
                }
                Step::Promote(_) => *weight = Some(0),
                _ => {}
            }
        }
    }
}

fn check_step(plan: &Plan, step: &Step, at: &[Seg<'_>], c: &mut Checker<'_>) {
    let with = |key: &'static str| -> Vec<Seg<'_>> {
        let mut p = at.to_vec();
        p.push(Seg::Key(key));
        p
    };
    match step {
        Step::Image(_) if plan.workload.image.is_none() => {
            let pos = c.doc.value(at);
            c.error(
                pos,
                "image step, but workload.image is not set; say which image to roll out".into(),
            );
        }
        Step::Hold(d) => c.positive(d.get(), &with("hold"), "hold"),
        Step::Run(RunStep::Long {
            timeout: Some(t), ..
        }) => {
            let mut p = with("run");
            p.push(Seg::Key("timeout"));
            c.positive(t.get(), &p, "run timeout");
        }
        Step::Wait(WaitStep::Long {
            timeout: Some(t), ..
        }) => {
            let mut p = with("wait");
            p.push(Seg::Key("timeout"));
            c.positive(t.get(), &p, "wait timeout");
        }
        Step::Weight(WeightStep::Gradual { step, every, .. }) => {
            if let Some(s) = step
                && s.percent() == 0
            {
                let mut p = with("weight");
                p.push(Seg::Key("step"));
                let pos = c.doc.value(&p);
                c.error(pos, "weight step of 0% never arrives; use 1 or more".into());
            }
            if let Some(e) = every {
                let mut p = with("weight");
                p.push(Seg::Key("every"));
                c.positive(e.get(), &p, "weight every");
            }
        }
        _ => {}
    }
}

fn check_rollback(plan: &Plan, c: &mut Checker<'_>) {
    let tiers: [(&str, &Option<RollbackTier>); 3] = [
        ("immediate", &plan.rollback.immediate),
        ("gradual", &plan.rollback.gradual),
        ("full", &plan.rollback.full),
    ];
    for (name, tier) in tiers {
        let Some(tier) = tier else { continue };
        if let Some(t) = tier.target {
            c.positive(
                t.get(),
                &path!["rollback", name, "target"],
                "rollback target",
            );
        }
        if tier.actions.is_empty() {
            let pos = c.doc.value(&path!["rollback", name, "actions"]);
            c.error(pos, format!("rollback.{name} has no actions"));
        }
        for (j, step) in tier.actions.iter().enumerate() {
            let at = path!["rollback", name, "actions", j];
            check_step(plan, step, &at, c);
        }
    }
}

fn check_notify(plan: &Plan, c: &mut Checker<'_>) {
    let Some(notify) = &plan.notify else { return };
    if let Err(why) = webhook_ok(&notify.webhook) {
        let pos = c.doc.value(&path!["notify", "webhook"]);
        c.error(
            pos,
            format!(
                "webhook `{}` {why}",
                crate::notify::mask_url(&notify.webhook)
            ),
        );
    }
}

/// https anywhere; plain http only to this machine.
fn webhook_ok(url: &str) -> Result<(), &'static str> {
    if let Some(rest) = url.strip_prefix("https://") {
        return if host_of(rest).is_empty() {
            Err("has no host")
        } else {
            Ok(())
        };
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err("is not an https URL");
    };
    let host = host_of(rest);
    let loopback = host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err("is plain http; use https (http is allowed only to localhost/127.0.0.1/[::1])")
    }
}

fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if host_port.starts_with('[') {
        return host_port
            .find(']')
            .map(|i| &host_port[..=i])
            .unwrap_or(host_port);
    }
    host_port.split(':').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_must_be_https_except_to_loopback() {
        assert!(webhook_ok("https://hooks.example.com/x").is_ok());
        assert!(webhook_ok("http://127.0.0.1:9000/hook").is_ok());
        assert!(webhook_ok("http://localhost/hook").is_ok());
        assert!(webhook_ok("http://[::1]:80/").is_ok());
        assert!(webhook_ok("http://hooks.example.com/x").is_err());
        assert!(webhook_ok("http://127.0.0.1.evil.example/x").is_err());
        assert!(webhook_ok("http://localhost@evil.example/").is_err());
        assert!(webhook_ok("ftp://x").is_err());
        assert!(webhook_ok("https://").is_err());
    }

    /// A canary plan with one error_rate threshold; `THRESHOLD` is replaced, line 13.
    const PLAN: &str = r#"version: 1
name: checkout 2.4.0
service: checkout
strategy: canary
environments:
  dev: { namespace: shop }
workload: { name: checkout, canary: checkout-canary }
traffic: { router: gateway-api, route: checkout }
metrics:
  queries:
    error_rate: sum(rate(errors_total{track="{{track}}"}[{{rate}}]))
  thresholds:
    error_rate: THRESHOLD
phases:
  - name: Dev
    environment: dev
    steps:
      - weight: 10
"#;

    fn errors(threshold: &str, plan: &str) -> Vec<(usize, usize, String)> {
        let text = plan.replace("THRESHOLD", threshold);
        crate::plan::check(std::path::Path::new("p.yaml"), &text)
            .diagnostics
            .into_iter()
            .map(|d| (d.line, d.column, d.message))
            .collect()
    }

    #[test]
    fn vs_stable_with_ratio_and_delta_checks_clean() {
        assert_eq!(
            errors("{ max: 0.05, vs_stable: { ratio: 2, delta: 0.005 } }", PLAN),
            vec![]
        );
        assert_eq!(errors("{ vs_stable: { delta: 0 } }", PLAN), vec![]);
        assert_eq!(errors("{ vs_stable: { ratio: 1 } }", PLAN), vec![]);
    }

    #[test]
    fn vs_stable_needs_a_ratio_or_a_delta() {
        assert_eq!(
            errors("{ max: 0.05, vs_stable: {} }", PLAN),
            vec![(
                13,
                41,
                "vs_stable of `error_rate` has neither ratio nor delta; give one or both (`{ ratio: 2, delta: 0.005 }`)".into()
            )]
        );
    }

    #[test]
    fn vs_stable_ratio_below_one_or_not_finite_is_an_error() {
        for (ratio, shown) in [("0.5", "0.5"), (".inf", "inf"), (".nan", "NaN")] {
            let found = errors(&format!("{{ vs_stable: {{ ratio: {ratio} }} }}",), PLAN);
            assert_eq!(
                found,
                vec![(
                    13,
                    39,
                    format!(
                        "vs_stable.ratio of `error_rate` is {shown}; it must be a finite number ≥ 1 (2 means twice stable)"
                    )
                )]
            );
        }
    }

    #[test]
    fn vs_stable_negative_or_infinite_delta_is_an_error() {
        for (delta, shown) in [("-0.1", "-0.1"), ("-.inf", "-inf")] {
            let found = errors(&format!("{{ vs_stable: {{ delta: {delta} }} }}"), PLAN);
            assert_eq!(
                found,
                vec![(
                    13,
                    39,
                    format!(
                        "vs_stable.delta of `error_rate` is {shown}; it must be a finite number ≥ 0, in the metric's unit"
                    )
                )]
            );
        }
    }

    #[test]
    fn vs_stable_without_a_canary_is_an_error() {
        let plan = PLAN
            .replace("strategy: canary", "strategy: rolling")
            .replace(", canary: checkout-canary", "")
            .replace("traffic: { router: gateway-api, route: checkout }\n", "");
        assert_eq!(
            errors("{ max: 0.05, vs_stable: { ratio: 2 } }", &plan),
            vec![(
                12,
                30,
                "threshold `error_rate` compares with the stable track, but the plan has no `workload.canary` to compare; remove vs_stable or add a canary".into()
            )]
        );
    }

    #[test]
    fn a_threshold_with_only_vs_stable_has_bounds() {
        let found = errors("{}", PLAN);
        assert_eq!(
            found,
            vec![(
                13,
                17,
                "threshold `error_rate` has neither max nor min (nor vs_stable)".into()
            )]
        );
    }
}
