//! Preflight: connects every environment a plan uses and checks context, API server, RBAC, objects
//! and Prometheus queries before anything changes. It only reads; it must never write to a cluster.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};

use crate::cluster::client::{self, ConnectError, Connection, explain};
use crate::metrics::prometheus::{PromClient, PromConfig};
use crate::metrics::sampler;
use crate::plan::duration::format_duration;
use crate::plan::{ConfigOp, Environment, Plan, Step};

/// One environment of the plan, connected and checked.
pub struct EnvLink {
    /// The plan environment's name.
    pub name: String,
    /// The kubeconfig context in use (the connection's).
    pub context: String,
    /// The workload's namespace in this environment.
    pub namespace: String,
    pub connection: Connection,
    /// The Prometheus base URL in use.
    pub prometheus: String,
    pub prom: PromClient,
}

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Pass,
    /// Worth a look, but nothing that stops the plan (a query with no data yet).
    Warn,
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckLine {
    /// The plan environment it is about.
    pub environment: String,
    pub status: CheckStatus,
    pub text: String,
}

/// Where to connect, overriding the plan.
pub struct Options {
    /// The kubeconfig file; `$KUBECONFIG` or `~/.kube/config` when `None`.
    pub kubeconfig: Option<PathBuf>,
    /// A context for every environment; callers give it only for one-environment plans.
    pub context: Option<String>,
    /// A Prometheus base URL for every environment.
    pub prometheus: Option<String>,
    /// How long each request may take.
    pub timeout: Duration,
}

/// The result of a preflight: what could be connected, and the checklist.
pub struct Preflight {
    /// Environments whose connection and Prometheus client could be built, in first-use order.
    pub envs: Vec<EnvLink>,
    /// Every check, environment by environment, in first-use order.
    pub lines: Vec<CheckLine>,
}

impl Preflight {
    /// True when no check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckLine> {
        self.lines.iter().filter(|l| l.status == CheckStatus::Fail)
    }

    /// The link to the plan environment `name`, when it could be built.
    pub fn env(&self, name: &str) -> Option<&EnvLink> {
        self.envs.iter().find(|e| e.name == name)
    }
}

/// The environments the plan's phases use, in first-use order (rollback tiers run in the
/// environment of the phase that is current, so they add none).
pub fn environments_used(plan: &Plan) -> Vec<String> {
    let mut used: Vec<String> = Vec::new();
    for phase in &plan.phases {
        if !used.contains(&phase.environment) {
            used.push(phase.environment.clone());
        }
    }
    used
}

/// One permission: a verb on a resource (and subresource) of an API group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub verb: &'static str,
    /// Empty for the core group.
    pub group: &'static str,
    /// Resource plural.
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
}

impl Access {
    const fn new(verb: &'static str, group: &'static str, resource: &'static str) -> Access {
        Access {
            verb,
            group,
            resource,
            subresource: None,
        }
    }

    /// `httproutes.gateway.networking.k8s.io`, `deployments.apps/scale`, `configmaps`: as
    /// kubectl names resources.
    pub fn resource_name(&self) -> String {
        let mut name = self.resource.to_string();
        if !self.group.is_empty() {
            name = format!("{name}.{}", self.group);
        }
        if let Some(sub) = self.subresource {
            name = format!("{name}/{sub}");
        }
        name
    }
}

const APPS: &str = "apps";
const CORE: &str = "";

/// What `watcher` needs on a resource: it lists first, then watches.
fn watched(out: &mut Vec<Access>, group: &'static str, resource: &'static str) {
    out.push(Access::new("list", group, resource));
    out.push(Access::new("watch", group, resource));
}

/// The router reads its object, patches the weight and follows it with a watch.
fn router_access(plan: &Plan, out: &mut Vec<Access>) {
    let Some(traffic) = &plan.traffic else {
        return;
    };
    let (group, resource) = match crate::traffic::object_kind(traffic.router) {
        Some(k) => (k.group, k.plural),
        None => (APPS, "deployments"),
    };
    out.push(Access::new("get", group, resource));
    out.push(Access::new("patch", group, resource));
    watched(out, group, resource);
}

/// What one step (of a phase or a rollback tier) needs, as the cluster actions do it.
fn step_access(plan: &Plan, step: &Step, out: &mut Vec<Access>) {
    let scale = |verb| Access {
        subresource: Some("scale"),
        ..Access::new(verb, APPS, "deployments")
    };
    match step {
        // set image: read the container list, then a strategic merge patch.
        Step::Image(_) => {
            out.push(Access::new("get", APPS, "deployments"));
            out.push(Access::new("patch", APPS, "deployments"));
        }
        // rollout status: a read, then a watch (which lists first).
        Step::Wait(_) => {
            out.push(Access::new("get", APPS, "deployments"));
            watched(out, APPS, "deployments");
        }
        Step::Weight(_) => router_access(plan, out),
        // Stable gets the new image, the weight goes to 0, the canary to 0 replicas.
        Step::Promote(_) => {
            out.push(Access::new("get", APPS, "deployments"));
            out.push(Access::new("patch", APPS, "deployments"));
            router_access(plan, out);
            out.push(scale("get"));
            out.push(scale("patch"));
        }
        Step::Flag(_) => {
            out.push(Access::new("get", CORE, "configmaps"));
            out.push(Access::new("patch", CORE, "configmaps"));
        }
        Step::Scale(_) => {
            out.push(scale("get"));
            out.push(scale("patch"));
        }
        // rollout undo: the Deployment, its ReplicaSets, then the template written back.
        Step::Undo(_) => {
            out.push(Access::new("get", APPS, "deployments"));
            out.push(Access::new("list", APPS, "replicasets"));
            out.push(Access::new("patch", APPS, "deployments"));
        }
        Step::Config(ConfigOp::Snapshot) => out.push(Access::new("get", CORE, "configmaps")),
        // A restore rewrites changed ConfigMaps and recreates deleted ones.
        Step::Config(ConfigOp::Restore) => {
            for verb in ["get", "update", "create"] {
                out.push(Access::new(verb, CORE, "configmaps"));
            }
        }
        Step::Check(_)
        | Step::Run(_)
        | Step::Hold(_)
        | Step::Pause(_)
        | Step::Approve(_)
        | Step::Notify(_) => {}
    }
}

/// Every rollback tier's actions, immediate first.
fn tier_actions(plan: &Plan) -> impl Iterator<Item = &Step> {
    [
        &plan.rollback.immediate,
        &plan.rollback.gradual,
        &plan.rollback.full,
    ]
    .into_iter()
    .flatten()
    .flat_map(|tier| tier.actions.iter())
}

/// The steps that can run in `environment`: its phases' steps and every rollback action.
fn steps_in<'a>(plan: &'a Plan, environment: &'a str) -> impl Iterator<Item = &'a Step> {
    plan.phases
        .iter()
        .filter(move |p| p.environment == environment)
        .flat_map(|p| p.steps.iter())
        .chain(tier_actions(plan))
}

/// Verbs/resources an environment needs: for the cluster watch, the traffic router, every
/// step of the phases in that environment and every action of every rollback tier. Sorted and
/// deduplicated.
pub fn required_access(plan: &Plan, environment: &str) -> Vec<Access> {
    let mut out = vec![Access::new("get", APPS, "deployments")];
    // The cluster watch reads both Deployments, then watches them, their ReplicaSets and pods.
    watched(&mut out, APPS, "deployments");
    watched(&mut out, APPS, "replicasets");
    watched(&mut out, CORE, "pods");
    router_access(plan, &mut out);
    // The Lease that keeps a second run of the plan out: read, created, renewed.
    for verb in ["get", "create", "update"] {
        out.push(Access::new(verb, "coordination.k8s.io", "leases"));
    }
    for step in steps_in(plan, environment) {
        step_access(plan, step, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// The ConfigMaps flag steps in `environment` and rollback actions name, in plan order: what
/// the preflight checks, the run snapshots, and `config: restore` puts back there.
pub fn configmaps_named(plan: &Plan, environment: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for step in steps_in(plan, environment) {
        if let Step::Flag(flag) = step
            && !names.contains(&flag.configmap)
        {
            names.push(flag.configmap.clone());
        }
    }
    names
}

/// Collects the lines of one environment.
struct Checklist {
    environment: String,
    lines: Vec<CheckLine>,
}

impl Checklist {
    fn new(environment: &str) -> Checklist {
        Checklist {
            environment: environment.to_string(),
            lines: Vec::new(),
        }
    }

    fn add(&mut self, status: CheckStatus, text: String) {
        self.lines.push(CheckLine {
            environment: self.environment.clone(),
            status,
            text,
        });
    }

    fn pass(&mut self, text: String) {
        self.add(CheckStatus::Pass, text);
    }

    fn warn(&mut self, text: String) {
        self.add(CheckStatus::Warn, text);
    }

    fn fail(&mut self, text: String) {
        self.add(CheckStatus::Fail, text);
    }
}

/// Connects and checks every environment of the plan, all at once; see the module docs.
/// Never fails as a whole: every problem is a [`CheckStatus::Fail`] line.
pub async fn run(plan: &Plan, options: &Options) -> Preflight {
    let names = environments_used(plan);
    let checked = join_all(
        names
            .iter()
            .map(|name| check_environment(plan, name, options)),
    )
    .await;
    let mut preflight = Preflight {
        envs: Vec::new(),
        lines: Vec::new(),
    };
    for (lines, link) in checked {
        preflight.lines.extend(lines);
        preflight.envs.extend(link);
    }
    preflight
}

async fn check_environment(
    plan: &Plan,
    name: &str,
    options: &Options,
) -> (Vec<CheckLine>, Option<EnvLink>) {
    let Some(env) = plan.environments.get(name) else {
        let mut list = Checklist::new(name);
        list.fail(format!(
            "environment {name} is not defined under environments"
        ));
        return (list.lines, None);
    };
    // The cluster and Prometheus are independent: checked side by side.
    let ((mut lines, connection), (prom_lines, prom)) = futures::join!(
        check_cluster(plan, name, env, options),
        check_prometheus(plan, name, env, options)
    );
    lines.extend(prom_lines);
    let link = match (connection, prom) {
        (Some(connection), Some((prometheus, prom))) => Some(EnvLink {
            name: name.to_string(),
            context: connection.context.clone(),
            namespace: env.namespace.clone(),
            connection,
            prometheus,
            prom,
        }),
        _ => None,
    };
    (lines, link)
}

/// What a connect error says, naming the context it was for.
fn connect_failure(err: &ConnectError, context: Option<&str>, environment: &str) -> String {
    match (err, context) {
        (ConnectError::Context { context, .. }, _) if context.is_empty() => format!(
            "{err} — the kubeconfig has no current context; set environments.{environment}.context or pass --context"
        ),
        (ConnectError::Context { .. } | ConnectError::Client { .. }, _) => err.to_string(),
        (ConnectError::Kubeconfig { .. }, Some(context)) => {
            format!("{err} (context {context})")
        }
        (ConnectError::Kubeconfig { .. }, None) => {
            format!("{err} (the kubeconfig's current context)")
        }
    }
}

/// Context, API server, permissions and objects of one environment. Returns the connection
/// when one could be built, whatever the checks found.
async fn check_cluster(
    plan: &Plan,
    name: &str,
    env: &Environment,
    options: &Options,
) -> (Vec<CheckLine>, Option<Connection>) {
    let mut list = Checklist::new(name);
    let wanted = options.context.as_deref().or(env.context.as_deref());
    let connection = match client::connect(options.kubeconfig.as_deref(), wanted).await {
        Ok(c) => c,
        Err(e) => {
            list.fail(connect_failure(&e, wanted, name));
            return (list.lines, None);
        }
    };
    let context = connection.context.clone();
    list.pass(format!("context {context} (server {})", connection.server));
    let timeout = options.timeout;
    match tokio::time::timeout(timeout, connection.client.apiserver_version()).await {
        Ok(Ok(info)) => list.pass(format!(
            "API server answers (Kubernetes {}) (context {context})",
            info.git_version
        )),
        // Every later check would fail the same way: one line says it.
        Ok(Err(e)) => {
            list.fail(format!(
                "API server {} does not answer: {} (context {context})",
                connection.server,
                crate::health::root_cause(&e)
            ));
            return (list.lines, Some(connection));
        }
        Err(_) => {
            list.fail(format!(
                "API server {} did not answer within {} (context {context})",
                connection.server,
                format_duration(timeout)
            ));
            return (list.lines, Some(connection));
        }
    }
    let ns = env.namespace.as_str();
    let (permissions, objects) = futures::join!(
        check_permissions(plan, name, ns, &connection, timeout),
        check_objects(plan, name, ns, &connection, timeout)
    );
    list.lines.extend(permissions);
    list.lines.extend(objects);
    (list.lines, Some(connection))
}

/// Asks the API server, with a SelfSubjectAccessReview, whether `access` is allowed in `ns`.
/// A review is a create that the API server answers without storing anything, so asking
/// keeps the preflight read-only; and unlike trying the verb it cannot change what it asks about.
async fn review(
    connection: &Connection,
    ns: &str,
    access: &Access,
    timeout: Duration,
) -> Result<bool, String> {
    let ssar = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_string()),
                verb: Some(access.verb.to_string()),
                group: Some(access.group.to_string()),
                resource: Some(access.resource.to_string()),
                subresource: access.subresource.map(str::to_string),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(connection.client.clone());
    match tokio::time::timeout(timeout, api.create(&PostParams::default(), &ssar)).await {
        Ok(Ok(answer)) => Ok(answer.status.is_some_and(|s| s.allowed)),
        Ok(Err(e)) => Err(explain(
            &e,
            "create",
            "selfsubjectaccessreviews.authorization.k8s.io",
        )),
        Err(_) => Err(format!(
            "no answer to a SelfSubjectAccessReview within {}",
            format_duration(timeout)
        )),
    }
}

async fn check_permissions(
    plan: &Plan,
    name: &str,
    ns: &str,
    connection: &Connection,
    timeout: Duration,
) -> Vec<CheckLine> {
    let mut list = Checklist::new(name);
    let context = &connection.context;
    let needed = required_access(plan, name);
    let answers = join_all(
        needed
            .iter()
            .map(|access| review(connection, ns, access, timeout)),
    )
    .await;
    let mut allowed = 0;
    let mut errors: Vec<String> = Vec::new();
    for (access, answer) in needed.iter().zip(answers) {
        match answer {
            Ok(true) => allowed += 1,
            Ok(false) => list.fail(format!(
                "cannot {} {} in namespace {ns} (context {context})",
                access.verb,
                access.resource_name()
            )),
            Err(why) => errors.push(why),
        }
    }
    // The reviews fail alike (no such API, no answer): the first error says it once.
    if let Some(first) = errors.first() {
        list.fail(format!(
            "cannot check permissions ({} of {} reviews failed): {first} (context {context})",
            errors.len(),
            needed.len()
        ));
    }
    if allowed > 0 {
        let noun = if allowed == 1 {
            "permission"
        } else {
            "permissions"
        };
        list.pass(format!(
            "{allowed} {noun} allowed in namespace {ns} (context {context})"
        ));
    }
    list.lines
}

/// One object the plan needs to exist.
struct Wanted {
    /// What messages call its kind: `deployment`, `httproute`, `configmap`.
    noun: &'static str,
    resource: ApiResource,
    name: String,
}

/// The stable and canary Deployments, the traffic object and the ConfigMaps, once each.
fn objects_wanted(plan: &Plan, environment: &str, list: &mut Checklist) -> Vec<Wanted> {
    let deployment = ApiResource::erase::<Deployment>(&());
    let configmap = ApiResource::erase::<ConfigMap>(&());
    let mut wanted = vec![Wanted {
        noun: "deployment",
        resource: deployment.clone(),
        name: plan.workload.name.clone(),
    }];
    if let Some(canary) = &plan.workload.canary {
        wanted.push(Wanted {
            noun: "deployment",
            resource: deployment,
            name: canary.clone(),
        });
    }
    if let Some(traffic) = &plan.traffic {
        match (
            crate::traffic::object_kind(traffic.router),
            traffic.route.as_deref(),
        ) {
            // The replicas router splits by the two Deployments, already listed.
            (None, _) => {
                if plan.workload.canary.is_none() {
                    list.fail("workload.canary is required for the replicas router".into());
                }
            }
            (Some(kind), Some(route)) => {
                let mut resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
                    kind.group,
                    kind.version,
                    kind.kind,
                ));
                resource.plural = kind.plural.to_string();
                wanted.push(Wanted {
                    noun: kind.noun,
                    resource,
                    name: route.to_string(),
                });
            }
            (Some(_), None) => list.fail(format!(
                "traffic.route is required for the {} traffic router",
                traffic.router.as_str()
            )),
        }
    }
    for name in configmaps_named(plan, environment) {
        wanted.push(Wanted {
            noun: "configmap",
            resource: configmap.clone(),
            name,
        });
    }
    wanted.dedup_by(|a, b| a.noun == b.noun && a.name == b.name);
    wanted
}

async fn check_objects(
    plan: &Plan,
    name: &str,
    ns: &str,
    connection: &Connection,
    timeout: Duration,
) -> Vec<CheckLine> {
    let mut list = Checklist::new(name);
    let context = &connection.context;
    let wanted = objects_wanted(plan, name, &mut list);
    let answers = join_all(wanted.iter().map(|w| {
        let api: Api<DynamicObject> =
            Api::namespaced_with(connection.client.clone(), ns, &w.resource);
        async move {
            // Metadata only: existence is the question, and it is the lightest read.
            tokio::time::timeout(timeout, api.get_metadata(&w.name)).await
        }
    }))
    .await;
    for (w, answer) in wanted.iter().zip(answers) {
        let object = format!("{} {ns}/{}", w.noun, w.name);
        match answer {
            Ok(Ok(_)) => list.pass(format!("{object} exists (context {context})")),
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => {
                list.fail(format!("{object} not found (context {context})"))
            }
            Ok(Err(e)) => list.fail(format!(
                "{} (context {context})",
                explain(&e, "get", &object)
            )),
            Err(_) => list.fail(format!(
                "cannot get {object}: no answer within {} (context {context})",
                format_duration(timeout)
            )),
        }
    }
    list.lines
}

/// The Prometheus URL, its client and one query of every probe. Returns the URL and client
/// when the client could be built, whatever the queries found.
async fn check_prometheus(
    plan: &Plan,
    name: &str,
    env: &Environment,
    options: &Options,
) -> (Vec<CheckLine>, Option<(String, PromClient)>) {
    let mut list = Checklist::new(name);
    let Some(url) = options
        .prometheus
        .clone()
        .or_else(|| env.prometheus.clone())
    else {
        list.fail(format!(
            "no Prometheus for environment {name}: set environments.{name}.prometheus or pass --prometheus"
        ));
        return (list.lines, None);
    };
    // The environment's headers, token and CA belong to its own Prometheus: `--prometheus`
    // names another server, which gets none of them (a token must not leak to it).
    let config = match &options.prometheus {
        Some(_) => Ok(PromConfig::new(&url, options.timeout)),
        None => PromConfig::for_environment(&url, env, options.timeout),
    };
    let prom = match config.and_then(PromClient::new) {
        Ok(p) => p,
        Err(e) => {
            list.fail(format!("prometheus {url}: {e}"));
            return (list.lines, None);
        }
    };
    let probes = match sampler::probes(
        &plan.metrics.queries,
        &env.namespace,
        &plan.service,
        plan.metrics.rate.get(),
        plan.tracks(),
    ) {
        Ok(p) => p,
        Err(e) => {
            list.fail(e);
            return (list.lines, Some((url, prom)));
        }
    };
    if probes.is_empty() {
        list.pass(format!(
            "prometheus {url}: the plan has no metric queries to check"
        ));
        return (list.lines, Some((url, prom)));
    }
    let answers = join_all(probes.iter().map(|p| prom.query_scalar(&p.promql, None))).await;
    let mut answered = 0;
    for (probe, answer) in probes.iter().zip(answers) {
        let what = format!("{} ({})", probe.metric, probe.track.as_str());
        match answer {
            Ok(Some(_)) => answered += 1,
            Ok(None) => list.warn(format!(
                "no data for {what} from prometheus {url} (empty or NaN); the console shows a gap until there is"
            )),
            Err(e) => list.fail(format!("query {what} failed: {e}")),
        }
    }
    if answered > 0 {
        list.pass(format!(
            "{answered} of {} metric queries answered by prometheus {url}",
            probes.len()
        ));
    }
    (list.lines, Some((url, prom)))
}
