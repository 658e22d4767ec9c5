//! The cluster actions against the simulator over real HTTP, side by side with kubectl: set
//! image, scale, pause/resume/restart, rollout undo (compared with `kubectl rollout undo` and
//! `kubectl rollout history`), rollout status (compared with `kubectl rollout status`) and
//! ConfigMap snapshot/restore. kubectl comparisons need kubectl on PATH (required when CI is set).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

use warroom::cluster::actions::configmap::{self, KeyChange};
use warroom::cluster::actions::rollout::{self, UndoOutcome};
use warroom::cluster::actions::status::{self, RolloutStatus};
use warroom::cluster::actions::{self, ActionError, RESTARTED_AT, RestoreChange};
use warroom::sim::server::Simulator;

const NS: &str = "shop";
const DEADLINE: Duration = Duration::from_secs(60);

struct Env {
    sim: Simulator,
    client: Client,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

async fn start() -> Env {
    let home = tempfile::tempdir().expect("tempdir");
    let (sim, conn) = common::start_demo_sim(home.path()).await;
    Env {
        kubeconfig: sim.kubeconfig.clone(),
        sim,
        client: conn.client,
        home,
    }
}

fn kubectl_present() -> bool {
    common::tool_available("kubectl", &["version", "--client"], "cluster_actions")
}

/// What kubectl printed, and whether it succeeded.
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Env {
    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Runs kubectl without blocking the runtime the simulator serves on.
    async fn kubectl(&self, args: &[&str]) -> Out {
        let out = tokio::process::Command::new("kubectl")
            .args(args)
            .args(["--context", "sim-development", "-n", NS])
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.home.path())
            .output()
            .await
            .expect("kubectl runs");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        }
    }

    /// kubectl that must succeed; its stdout.
    async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(out.ok, "kubectl {args:?} failed: {}", out.stderr);
        out.stdout
    }

    /// kubectl that must fail; its error line without kubectl's `error: ` prefix.
    async fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            !out.ok,
            "kubectl {args:?} should fail, printed {}",
            out.stdout
        );
        out.stderr
            .strip_prefix("error: ")
            .unwrap_or(&out.stderr)
            .to_string()
    }

    async fn create_deployment(&self, name: &str, image: &str, replicas: i32) {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": "created"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [
                        {"name": "app", "image": image},
                        {"name": "sidecar", "image": "registry.example.com/proxy:1"},
                    ]},
                },
            },
        }))
        .expect("deployment json");
        self.deployments()
            .create(&PostParams::default(), &d)
            .await
            .expect("create deployment");
        self.rolled_out(name).await;
    }

    /// Waits (by watching) until `name` has rolled out, failing the test otherwise.
    async fn rolled_out(&self, name: &str) {
        let status = status::wait_complete(&self.client, NS, name, Instant::now() + DEADLINE)
            .await
            .expect("rollout status readable");
        assert!(status.is_done(), "{name} did not roll out: {status:?}");
    }

    async fn get(&self, name: &str) -> Deployment {
        self.deployments().get(name).await.expect("get deployment")
    }
}

/// A refusal's kubectl wording, after the `deployment <ns>/<name>: ` that names the object.
fn kubectl_part(err: &ActionError, name: &str) -> String {
    let text = err.to_string();
    let prefix = format!("deployment {NS}/{name}: ");
    text.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{text:?} does not start with {prefix:?}"))
        .to_string()
}

fn image_of(d: &Deployment, container: &str) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == container)?
        .image
        .clone()
}

fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

fn revision(d: &Deployment) -> Option<String> {
    d.metadata
        .annotations
        .as_ref()?
        .get("deployment.kubernetes.io/revision")
        .cloned()
}

#[tokio::test]
async fn set_image_scale_pause_resume_and_restart_behave_like_kubectl() {
    let env = start().await;
    let with_kubectl = kubectl_present();
    env.create_deployment("web", "registry.example.com/web:1", 2)
        .await;

    // set image: the first container by default, a named one otherwise.
    let change = actions::set_image(&env.client, NS, "web", None, "registry.example.com/web:2")
        .await
        .expect("set image");
    assert_eq!(change.container, "app");
    assert_eq!(
        change.previous.as_deref(),
        Some("registry.example.com/web:1")
    );
    let d = env.get("web").await;
    assert_eq!(
        image_of(&d, "app").as_deref(),
        Some("registry.example.com/web:2")
    );
    assert_eq!(
        image_of(&d, "sidecar").as_deref(),
        Some("registry.example.com/proxy:1")
    );
    actions::set_image(
        &env.client,
        NS,
        "web",
        Some("sidecar"),
        "registry.example.com/proxy:2",
    )
    .await
    .expect("set sidecar image");
    let d = env.get("web").await;
    assert_eq!(
        image_of(&d, "app").as_deref(),
        Some("registry.example.com/web:2")
    );
    assert_eq!(
        image_of(&d, "sidecar").as_deref(),
        Some("registry.example.com/proxy:2")
    );
    let missing = actions::set_image(&env.client, NS, "web", Some("nope"), "x:1")
        .await
        .expect_err("no such container");
    assert!(matches!(missing, ActionError::ContainerNotFound { .. }));
    assert!(
        missing
            .to_string()
            .starts_with("unable to find container named \"nope\"")
    );
    let gone = actions::set_image(&env.client, NS, "nope", None, "x:1")
        .await
        .expect_err("no such deployment");
    assert_eq!(gone.to_string(), "deployment shop/nope not found");
    env.rolled_out("web").await;

    // scale, through the scale subresource.
    let scaled = actions::scale(&env.client, NS, "web", 3)
        .await
        .expect("scale");
    assert_eq!((scaled.previous, scaled.replicas), (2, 3));
    env.rolled_out("web").await;
    let status = env.get("web").await.status.expect("status");
    assert_eq!(status.available_replicas, Some(3));
    assert!(matches!(
        actions::scale(&env.client, NS, "web", -1).await,
        Err(ActionError::InvalidReplicas { replicas: -1 })
    ));

    // pause / resume, refusing what kubectl refuses with kubectl's words.
    actions::pause(&env.client, NS, "web").await.expect("pause");
    assert!(paused(&env.get("web").await));
    let again = actions::pause(&env.client, NS, "web")
        .await
        .expect_err("already paused");
    assert!(matches!(again, ActionError::AlreadyPaused { .. }));
    assert_eq!(
        again.to_string(),
        "deployment shop/web: deployments.apps \"web\" is already paused"
    );
    let restart_paused = actions::restart(&env.client, NS, "web")
        .await
        .expect_err("restart refuses a paused deployment");
    assert!(matches!(restart_paused, ActionError::RestartPaused { .. }));
    if with_kubectl {
        assert_eq!(
            env.kubectl_err(&["rollout", "pause", "deployment/web"])
                .await,
            kubectl_part(&again, "web")
        );
        assert_eq!(
            env.kubectl_err(&["rollout", "restart", "deployment/web"])
                .await,
            kubectl_part(&restart_paused, "web")
        );
    }
    actions::resume(&env.client, NS, "web")
        .await
        .expect("resume");
    assert!(!paused(&env.get("web").await));
    let not_paused = actions::resume(&env.client, NS, "web")
        .await
        .expect_err("not paused");
    assert!(matches!(not_paused, ActionError::NotPaused { .. }));
    if with_kubectl {
        assert_eq!(
            env.kubectl_err(&["rollout", "resume", "deployment/web"])
                .await,
            kubectl_part(&not_paused, "web")
        );
    }

    // restart: an RFC 3339 stamp on the pod template, which makes a new revision.
    let before = revision(&env.get("web").await);
    let stamp = actions::restart(&env.client, NS, "web")
        .await
        .expect("restart");
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{stamp}");
    assert!(stamp.ends_with('Z') && !stamp.contains('.'), "{stamp}");
    let d = env.get("web").await;
    let template_annotations = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    assert_eq!(template_annotations.get(RESTARTED_AT), Some(&stamp));
    env.rolled_out("web").await;
    let after = revision(&env.get("web").await);
    assert_ne!(before, after, "restart should roll a new revision");
}

/// Sets up `name` with three revisions: image :1, :2, :3, each rolled out, with change-cause
/// `created`, `two`, `three`.
async fn three_revisions(env: &Env, name: &str) {
    env.create_deployment(name, "registry.example.com/web:1", 2)
        .await;
    for (image, cause) in [
        ("registry.example.com/web:2", "two"),
        ("registry.example.com/web:3", "three"),
    ] {
        // One patch, as `kubectl set image --record` makes: the new ReplicaSet gets the cause.
        let patch = json!({
            "metadata": {"annotations": {"kubernetes.io/change-cause": cause}},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
        });
        env.deployments()
            .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .expect("set image");
        env.rolled_out(name).await;
    }
    assert_eq!(revision(&env.get(name).await).as_deref(), Some("3"));
}

/// kubectl output about `from` made comparable with the same output about `to`.
fn renamed(text: &str, from: &str, to: &str) -> String {
    text.lines()
        .filter(|l| !l.contains("pod-template-hash"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(from, to)
}

#[tokio::test]
async fn undo_matches_kubectl_rollout_undo_and_history() {
    if !kubectl_present() {
        return;
    }
    let env = start().await;
    three_revisions(&env, "ours").await;
    three_revisions(&env, "theirs").await;

    // Undo to the previous revision: ours with our function, theirs with kubectl.
    let outcome = rollout::undo(&env.client, NS, "ours", None)
        .await
        .expect("undo");
    assert_eq!(outcome, UndoOutcome::RolledBack { revision: 2 });
    let kubectl_said = env
        .kubectl_ok(&["rollout", "undo", "deployment/theirs"])
        .await;
    assert_eq!(outcome.message("theirs"), kubectl_said);
    env.rolled_out("ours").await;
    env.rolled_out("theirs").await;

    let (ours, theirs) = (env.get("ours").await, env.get("theirs").await);
    assert_eq!(
        image_of(&ours, "app").as_deref(),
        Some("registry.example.com/web:2")
    );
    let as_text = |d: &Deployment| {
        serde_json::to_string(&d.spec.as_ref().map(|s| &s.template)).expect("json")
    };
    assert_eq!(as_text(&ours).replace("ours", "theirs"), as_text(&theirs));
    assert_eq!(ours.metadata.annotations, theirs.metadata.annotations);
    assert_eq!(revision(&ours).as_deref(), Some("4"));
    let annotations = ours.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("kubernetes.io/change-cause")
            .map(String::as_str),
        Some("two"),
        "the ReplicaSet's change-cause comes back with its template"
    );

    // kubectl's history of both reads the same: revisions 1, 3, 4; #4 is the :2 template.
    let history = env
        .kubectl_ok(&["rollout", "history", "deployment/ours"])
        .await;
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "3", "4"], "{history}");
    assert_eq!(
        renamed(&history, "ours", "theirs"),
        env.kubectl_ok(&["rollout", "history", "deployment/theirs"])
            .await
    );
    for r in ["1", "3", "4"] {
        let flag = format!("--revision={r}");
        let mine = env
            .kubectl_ok(&["rollout", "history", "deployment/ours", &flag])
            .await;
        let other = env
            .kubectl_ok(&["rollout", "history", "deployment/theirs", &flag])
            .await;
        assert_eq!(
            renamed(&mine, "ours", "theirs"),
            renamed(&other, "theirs", "theirs")
        );
    }
    let rev4 = env
        .kubectl_ok(&["rollout", "history", "deployment/ours", "--revision=4"])
        .await;
    assert!(rev4.contains("registry.example.com/web:2"), "{rev4}");

    // --to-revision on both.
    let outcome = rollout::undo(&env.client, NS, "ours", Some(1))
        .await
        .expect("undo to 1");
    assert_eq!(outcome, UndoOutcome::RolledBack { revision: 1 });
    env.kubectl_ok(&["rollout", "undo", "deployment/theirs", "--to-revision=1"])
        .await;
    env.rolled_out("ours").await;
    env.rolled_out("theirs").await;
    let (ours, theirs) = (env.get("ours").await, env.get("theirs").await);
    assert_eq!(
        image_of(&ours, "app").as_deref(),
        Some("registry.example.com/web:1")
    );
    assert_eq!(as_text(&ours).replace("ours", "theirs"), as_text(&theirs));
    assert_eq!(ours.metadata.annotations, theirs.metadata.annotations);
    assert_eq!(revision(&ours).as_deref(), Some("5"));
    let rs_history = env
        .kubectl_ok(&[
            "get",
            "rs",
            "-l",
            "app=ours",
            "-o",
            "jsonpath={range .items[*]}{.metadata.annotations.deployment\\.kubernetes\\.io/revision}:{.metadata.annotations.deployment\\.kubernetes\\.io/revision-history}{\"\\n\"}{end}",
        ])
        .await;
    let mut rs_history: Vec<&str> = rs_history.lines().collect();
    rs_history.sort();
    assert_eq!(
        rs_history,
        ["3:", "4:2", "5:1"],
        "revision-history kept per ReplicaSet"
    );

    // Already at that template: skipped, in kubectl's words.
    let skipped = rollout::undo(&env.client, NS, "ours", Some(5))
        .await
        .expect("undo to current");
    assert_eq!(skipped, UndoOutcome::Skipped { revision: 5 });
    assert_eq!(
        skipped.message("ours"),
        env.kubectl_ok(&["rollout", "undo", "deployment/ours", "--to-revision=5"])
            .await
    );
    assert_eq!(revision(&env.get("ours").await).as_deref(), Some("5"));

    // A revision that is not there.
    let missing = rollout::undo(&env.client, NS, "ours", Some(9))
        .await
        .expect_err("no revision 9");
    assert_eq!(
        missing,
        ActionError::RevisionNotFound {
            namespace: NS.into(),
            name: "ours".into(),
            revision: 9
        }
    );
    assert_eq!(
        env.kubectl_err(&["rollout", "undo", "deployment/ours", "--to-revision=9"])
            .await,
        kubectl_part(&missing, "ours")
    );

    // Paused: refused, template untouched.
    actions::pause(&env.client, NS, "ours")
        .await
        .expect("pause");
    let refused = rollout::undo(&env.client, NS, "ours", None)
        .await
        .expect_err("paused");
    assert_eq!(
        refused,
        ActionError::RollbackPaused {
            name: "ours".into()
        }
    );
    let kubectl_refused = env
        .kubectl_err(&["rollout", "undo", "deployment/ours"])
        .await;
    // kubectl 1.32 leaves out the `deployment/<name>` our message names.
    assert!(
        kubectl_refused.starts_with(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume"
        ),
        "{kubectl_refused}"
    );
    assert_eq!(
        image_of(&env.get("ours").await, "app").as_deref(),
        Some("registry.example.com/web:1")
    );
    actions::resume(&env.client, NS, "ours")
        .await
        .expect("resume");

    // One revision only: no history.
    env.create_deployment("fresh", "registry.example.com/web:1", 1)
        .await;
    let none = rollout::undo(&env.client, NS, "fresh", None)
        .await
        .expect_err("no history");
    assert_eq!(
        none,
        ActionError::NoHistory {
            namespace: NS.into(),
            name: "fresh".into()
        }
    );
    assert_eq!(
        env.kubectl_err(&["rollout", "undo", "deployment/fresh"])
            .await,
        kubectl_part(&none, "fresh")
    );
    let gone = rollout::undo(&env.client, NS, "nope", None)
        .await
        .expect_err("not found");
    assert_eq!(gone.to_string(), "deployment shop/nope not found");
}

/// Our status and kubectl's at one moment: samples until ours reads the same before and after
/// kubectl's, then compares. Returns ours.
async fn status_matches_kubectl(env: &Env, name: &str) -> RolloutStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let before = status::status(&env.client, NS, name).await.expect("status");
        let out = env
            .kubectl(&[
                "rollout",
                "status",
                &format!("deployment/{name}"),
                "--watch=false",
            ])
            .await;
        let after = status::status(&env.client, NS, name).await.expect("status");
        if before == after {
            match &before {
                RolloutStatus::Failed(m) => {
                    assert!(!out.ok);
                    assert_eq!(out.stderr, format!("error: {m}"));
                }
                other => {
                    assert!(out.ok, "{}", out.stderr);
                    assert_eq!(out.stdout, other.message());
                }
            }
            return before;
        }
        assert!(Instant::now() < deadline, "status never held still");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn rollout_status_agrees_with_kubectl_and_wait_complete_watches() {
    let env = start().await;
    let with_kubectl = kubectl_present();
    env.create_deployment("web", "registry.example.com/web:1", 3)
        .await;
    if with_kubectl {
        assert!(status_matches_kubectl(&env, "web").await.is_done());
    }
    assert_eq!(
        status::status(&env.client, NS, "web")
            .await
            .expect("status"),
        RolloutStatus::Done("deployment \"web\" successfully rolled out".into())
    );

    // An image that never pulls: the rollout stalls part-way and stays there.
    actions::set_image(
        &env.client,
        NS,
        "web",
        None,
        "registry.example.com/web:pullfail",
    )
    .await
    .expect("set image");
    let stalled = status::wait_complete(
        &env.client,
        NS,
        "web",
        Instant::now() + Duration::from_secs(2),
    )
    .await
    .expect("status");
    assert!(matches!(stalled, RolloutStatus::Waiting(_)), "{stalled:?}");
    if with_kubectl {
        let mid = status_matches_kubectl(&env, "web").await;
        assert!(
            mid.message()
                .starts_with("Waiting for deployment \"web\" rollout to finish:"),
            "{mid:?}"
        );
    }

    // Past its progress deadline the rollout has failed, for us and for kubectl.
    let patch = json!({"spec": {"progressDeadlineSeconds": 1}});
    env.deployments()
        .patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("deadline");
    let failed = status::wait_complete(&env.client, NS, "web", Instant::now() + DEADLINE)
        .await
        .expect("status");
    assert_eq!(
        failed,
        RolloutStatus::Failed("deployment \"web\" exceeded its progress deadline".into())
    );
    if with_kubectl {
        assert_eq!(status_matches_kubectl(&env, "web").await, failed);
    }

    // Back to a good image: wait_complete sees it through.
    actions::set_image(&env.client, NS, "web", None, "registry.example.com/web:2")
        .await
        .expect("set image");
    let done = status::wait_complete(&env.client, NS, "web", Instant::now() + DEADLINE)
        .await
        .expect("status");
    assert!(done.is_done(), "{done:?}");
    if with_kubectl {
        assert!(status_matches_kubectl(&env, "web").await.is_done());
    }
    let gone = status::wait_complete(&env.client, NS, "nope", Instant::now() + DEADLINE)
        .await
        .expect_err("not found");
    assert_eq!(gone.to_string(), "deployment shop/nope not found");
}

#[tokio::test]
async fn undo_during_a_stuck_rollout_goes_through_while_status_is_being_written() {
    let env = start().await;
    env.create_deployment("web", "registry.example.com/web:1", 3)
        .await;
    let template_before = env.get("web").await.spec.expect("spec").template;
    actions::set_image(
        &env.client,
        NS,
        "web",
        None,
        "registry.example.com/web:pullfail",
    )
    .await
    .expect("set image");
    // The rollout is under way: revision 2 has pods, which never become ready.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let d = env.get("web").await;
        let updated = d.status.as_ref().and_then(|s| s.updated_replicas);
        if revision(&d).as_deref() == Some("2") && updated.unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the rollout never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Status keeps being written all through the undo, as a Deployment controller does while a
    // rollout moves (here also a writer of our own, so that it surely happens meanwhile).
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let api = env.deployments();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut writes = 0u32;
            while !stop.is_cancelled() {
                let status = json!({"status": {"collisionCount": writes % 2 + 1}});
                if api
                    .patch_status("web", &PatchParams::default(), &Patch::Merge(status))
                    .await
                    .is_ok()
                {
                    writes += 1;
                }
            }
            writes
        })
    };
    let outcome = rollout::undo(&env.client, NS, "web", None).await;
    stop.cancel();
    let writes = writer.await.expect("writer");
    assert!(writes > 0, "no status was written during the undo");
    assert_eq!(outcome, Ok(UndoOutcome::RolledBack { revision: 1 }));
    let template_now = env.get("web").await.spec.expect("spec").template;
    assert_eq!(template_now, template_before);
    env.rolled_out("web").await;
    assert_eq!(revision(&env.get("web").await).as_deref(), Some("3"));
}

#[tokio::test]
async fn undo_keeps_template_fields_this_client_does_not_know() {
    let env = start().await;
    let raw: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        NS,
        &ApiResource::erase::<Deployment>(&()),
    );
    // Fields k8s-openapi has no place for, as a newer API server might have.
    let d: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "future"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "future"}},
            "template": {
                "metadata": {"labels": {"app": "future"}},
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": "registry.example.com/web:1",
                        "futureContainerField": {"level": 1},
                    }],
                    "futurePodField": "one",
                },
            },
        },
    }))
    .expect("deployment json");
    raw.create(&PostParams::default(), &d)
        .await
        .expect("create");
    env.rolled_out("future").await;
    // Revision 2 differs from revision 1 in an unknown field only.
    let patch = json!({"spec": {"template": {"spec": {"futurePodField": "two"}}}});
    raw.patch("future", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patch");
    env.rolled_out("future").await;
    assert_eq!(revision(&env.get("future").await).as_deref(), Some("2"));

    let outcome = rollout::undo(&env.client, NS, "future", None)
        .await
        .expect("undo");
    assert_eq!(outcome, UndoOutcome::RolledBack { revision: 1 });
    let now = raw.get("future").await.expect("get");
    let template = now.data.pointer("/spec/template/spec").expect("template");
    assert_eq!(template.pointer("/futurePodField"), Some(&json!("one")));
    assert_eq!(
        template.pointer("/containers/0/futureContainerField"),
        Some(&json!({"level": 1}))
    );
    env.rolled_out("future").await;
    // Now at revision 1's template: a second undo to it is skipped, unknown fields compared.
    let again = rollout::undo(&env.client, NS, "future", Some(3))
        .await
        .expect("undo to current");
    assert_eq!(again, UndoOutcome::Skipped { revision: 3 });
}

#[tokio::test]
async fn wait_complete_names_an_api_outage_instead_of_waiting() {
    let env = start().await;
    env.create_deployment("web", "registry.example.com/web:1", 2)
        .await;
    actions::set_image(
        &env.client,
        NS,
        "web",
        None,
        "registry.example.com/web:pullfail",
    )
    .await
    .expect("set image");
    // The rollout is stuck, so the wait runs to its deadline, all of it inside the outage.
    let client = env.client.clone();
    let waiting = tokio::spawn(async move {
        status::wait_complete(&client, NS, "web", Instant::now() + Duration::from_secs(2)).await
    });
    common::post_fault(&env.sim, r#"{"kind":"api_outage","for":"3s"}"#).await;
    let result = waiting.await.expect("wait_complete ran");
    let Err(err) = result else {
        panic!("an outage read as {result:?}");
    };
    let text = err.to_string();
    assert!(
        text.starts_with("cannot watch deployment shop/web: ")
            || text.starts_with("cannot get deployment shop/web: "),
        "{text}"
    );
    // Once the API server is back, the stuck rollout reads as waiting again.
    let deadline = Instant::now() + DEADLINE;
    while status::status(&env.client, NS, "web").await.is_err() {
        assert!(Instant::now() < deadline, "the API server never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = status::wait_complete(
        &env.client,
        NS,
        "web",
        Instant::now() + Duration::from_secs(1),
    )
    .await;
    assert!(matches!(after, Ok(RolloutStatus::Waiting(_))), "{after:?}");
}

async fn create_configmap(
    api: &Api<ConfigMap>,
    name: &str,
    data: &[(&str, &str)],
    binary: Option<Vec<u8>>,
) {
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("team".to_string(), "shop".to_string())])),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        binary_data: binary.map(|b| BTreeMap::from([("blob".to_string(), ByteString(b))])),
        ..Default::default()
    };
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create configmap");
}

#[tokio::test]
async fn configmap_snapshot_then_restore_puts_back_exactly_what_was_there() {
    let env = start().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    create_configmap(
        &api,
        "flags-a",
        &[("a", "1"), ("b", "2")],
        Some(vec![0, 1, 2]),
    )
    .await;
    create_configmap(&api, "flags-b", &[("x", "on")], None).await;
    create_configmap(&api, "flags-c", &[("y", "off")], None).await;

    let snap = configmap::snapshot(&env.client, NS, &["flags-a", "flags-b", "flags-c"])
        .await
        .expect("snapshot");
    assert_eq!(snap.items.len(), 3);
    assert_eq!(snap.items[0].data.get("b").map(String::as_str), Some("2"));
    assert_eq!(
        snap.items[0].binary_data.get("blob"),
        Some(&ByteString(vec![0, 1, 2]))
    );
    assert!(snap.items.iter().all(|i| i.resource_version.is_some()));

    // Change a key, add one, delete one, change the binary, delete a whole ConfigMap.
    assert_eq!(
        configmap::set_key(&env.client, NS, "flags-a", "b", "20")
            .await
            .expect("set b"),
        KeyChange {
            previous: Some("2".into())
        }
    );
    assert_eq!(
        configmap::set_key(&env.client, NS, "flags-a", "new", "x")
            .await
            .expect("set new"),
        KeyChange { previous: None }
    );
    let patch = json!({"data": {"a": null}, "binaryData": {"blob": "AwQ="}});
    api.patch("flags-a", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("delete a key");
    api.delete("flags-b", &DeleteParams::default())
        .await
        .expect("delete flags-b");
    // Relabel and annotate flags-a; only relabel flags-c (its data stays as it was).
    let relabel = json!({"metadata": {"labels": {"team": "ops"}, "annotations": {"note": "x"}}});
    api.patch("flags-a", &PatchParams::default(), &Patch::Merge(relabel))
        .await
        .expect("relabel flags-a");
    let relabel = json!({"metadata": {"labels": {"team": null, "owner": "me"}}});
    api.patch("flags-c", &PatchParams::default(), &Patch::Merge(relabel))
        .await
        .expect("relabel flags-c");
    let changed = api.get("flags-a").await.expect("get");
    assert_eq!(
        changed.data.clone().unwrap_or_default(),
        BTreeMap::from([
            ("b".to_string(), "20".to_string()),
            ("new".to_string(), "x".to_string())
        ])
    );

    let report = configmap::restore(&env.client, &snap).await;
    let by_name: BTreeMap<String, Result<RestoreChange, ActionError>> =
        report.into_iter().map(|r| (r.name, r.result)).collect();
    assert_eq!(
        by_name["flags-a"],
        Ok(RestoreChange::Rewritten {
            changed: vec!["b".into(), "blob".into()],
            removed: vec!["new".into()],
            readded: vec!["a".into()],
            labels: vec!["team".into()],
            annotations: vec!["note".into()],
        })
    );
    assert_eq!(by_name["flags-b"], Ok(RestoreChange::Recreated));
    assert_eq!(
        by_name["flags-c"],
        Ok(RestoreChange::Rewritten {
            changed: vec![],
            removed: vec![],
            readded: vec![],
            labels: vec!["owner".into(), "team".into()],
            annotations: vec![],
        })
    );

    let again = configmap::snapshot(&env.client, NS, &["flags-a", "flags-b", "flags-c"])
        .await
        .expect("snapshot again");
    for (was, now) in snap.items.iter().zip(&again.items) {
        assert_eq!(was.name, now.name);
        assert_eq!(was.data, now.data, "{}", was.name);
        assert_eq!(was.binary_data, now.binary_data, "{}", was.name);
        assert_eq!(was.labels, now.labels, "{}", was.name);
        assert_eq!(was.annotations, now.annotations, "{}", was.name);
    }
    // Restoring again changes nothing.
    let twice = configmap::restore(&env.client, &snap).await;
    assert!(
        twice
            .iter()
            .all(|r| r.result == Ok(RestoreChange::Unchanged)),
        "{twice:?}"
    );

    let missing = configmap::snapshot(&env.client, NS, &["flags-a", "nope"])
        .await
        .expect_err("missing configmap");
    assert_eq!(missing.to_string(), "configmap shop/nope not found");
    let missing = configmap::set_key(&env.client, NS, "nope", "k", "v")
        .await
        .expect_err("missing configmap");
    assert_eq!(missing.to_string(), "configmap shop/nope not found");
}

#[tokio::test]
async fn an_unreachable_api_server_is_named_with_its_cause() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}").parse().expect("url");
    let client = Client::try_from(kube::Config::new(url)).expect("client");
    let err = actions::pause(&client, NS, "web")
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, ActionError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("cannot get deployment shop/web: API server unreachable ("),
        "{text}"
    );
}
