//! The real kubectl against `warroom sim`: a scripted on-call session per test, asserting on
//! what kubectl prints (columns, values). Needs `kubectl` on PATH; fails without it when CI is set.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// `warroom sim` running as a child process, with the kubeconfig it wrote.
struct Sim {
    child: Child,
    kubeconfig: PathBuf,
    kubernetes: String,
    home: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether kubectl can run; in CI its absence is a failure, elsewhere a loud skip.
fn kubectl_present() -> bool {
    common::tool_available("kubectl", &["version", "--client"], "kubectl session")
}

/// Starts `warroom sim` and reads the four endpoint lines it prints.
fn start_sim() -> Sim {
    let sim = spawn_sim();
    sim.wait_for("the seeded deployments to be ready", |s| {
        let out = s.kubectl(&["get", "deployments", "--no-headers"]);
        let ready: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        (ready == ["4/4", "2/2"]).then_some(())
    });
    sim
}

/// Spawns `warroom sim` and checks the four endpoint lines it prints; does not wait for pods.
fn spawn_sim() -> Sim {
    let home = tempfile::tempdir().expect("tempdir");
    let kubeconfig = home.path().join("sim.kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_warroom"))
        .args(["sim", "--listen", "127.0.0.1:0", "--speed", "10"])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        // Its log file goes to the test's directory, never the user's.
        .env("XDG_STATE_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("warroom sim starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while lines.len() < 4 {
        match rx.recv_timeout(DEADLINE) {
            Ok(l) => lines.push(l),
            Err(e) => panic!("warroom sim printed only {lines:?}: {e}"),
        }
    }
    let value = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no {key}: line in {lines:?}"))
            .to_string()
    };
    assert!(value("kubernetes").starts_with("http://127.0.0.1:"));
    assert!(value("prometheus").starts_with("http://127.0.0.1:"));
    assert!(value("metrics").ends_with("/metrics"));
    assert_eq!(PathBuf::from(value("kubeconfig")), kubeconfig);
    Sim {
        child,
        kubeconfig,
        kubernetes: value("kubernetes"),
        home,
    }
}

impl Sim {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.home.path());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("kubectl runs")
    }

    /// Runs kubectl, failing the test unless it succeeds; returns stdout.
    fn kubectl(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `check` until it gives a value, failing the test at the deadline.
    fn wait_for<T>(&self, what: &str, mut check: impl FnMut(&Sim) -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(POLL);
        }
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl -o json prints JSON")
    }
}

/// Text with every run of blanks made one space, per line: describe's column padding depends
/// on the widest label present, so tests compare content, not alignment.
fn squeezed(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// The rows of a table, as whitespace-separated cells, header excluded.
fn rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect()
}

fn pod_names(sim: &Sim, selector: &str) -> Vec<String> {
    sim.kubectl(&["get", "pods", "-l", selector, "-o", "name"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn get_lists_every_kind_with_the_columns_of_a_real_cluster() {
    if !kubectl_present() {
        return;
    }
    let sim = start_sim();
    // Pods: default, wide, all namespaces, label selector, names.
    let pods = sim.kubectl(&["get", "pods"]);
    assert_eq!(
        header(&pods),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    let rows_now = rows(&pods);
    assert_eq!(rows_now.len(), 6, "{pods}");
    for r in &rows_now {
        assert!(r[0].starts_with("checkout-"), "{pods}");
        assert_eq!((r[1], r[2], r[3]), ("1/1", "Running", "0"), "{pods}");
    }
    let wide = sim.kubectl(&["get", "pods", "-o", "wide"]);
    assert_eq!(
        header(&wide),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    for r in rows(&wide) {
        assert!(r[5].starts_with("10.244."), "{wide}");
        assert!(r[6].starts_with("sim-node-"), "{wide}");
        assert_eq!((r[7], r[8]), ("<none>", "<none>"), "{wide}");
    }
    let all = sim.kubectl(&["get", "pods", "-A"]);
    assert_eq!(header(&all)[..2], ["NAMESPACE", "NAME"]);
    assert!(rows(&all).iter().all(|r| r[0] == "shop"), "{all}");
    let canary = sim.kubectl(&["get", "pods", "-n", "shop", "-l", "track=canary"]);
    assert_eq!(rows(&canary).len(), 2, "{canary}");
    assert!(
        rows(&canary)
            .iter()
            .all(|r| r[0].starts_with("checkout-canary-")),
        "{canary}"
    );
    let names = pod_names(&sim, "track=stable");
    assert_eq!(names.len(), 4);
    assert!(names.iter().all(|n| n.starts_with("pod/checkout-")));

    // Deployments and ReplicaSets, with the wide columns.
    let deploys = sim.kubectl(&["get", "deployments", "-o", "wide"]);
    assert_eq!(
        header(&deploys),
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let d = rows(&deploys);
    assert_eq!(d[0][..4], ["checkout", "4/4", "4", "4"]);
    assert_eq!(
        d[0][5..],
        [
            "app",
            "registry.example.com/shop/checkout:2.3.0",
            "app=checkout,track=stable"
        ]
    );
    assert_eq!(d[1][..4], ["checkout-canary", "2/2", "2", "2"]);
    let rs = sim.kubectl(&["get", "replicasets", "-o", "wide"]);
    assert_eq!(
        header(&rs),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    for r in rows(&rs) {
        let hash = r[0].rsplit('-').next().unwrap_or_default();
        assert!(r[7].contains(&format!("pod-template-hash={hash}")), "{rs}");
    }

    // Services, ConfigMaps, Events, Namespaces, HTTPRoutes.
    let svc = sim.kubectl(&["get", "services", "-o", "wide"]);
    assert_eq!(
        header(&svc),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    let s = rows(&svc);
    assert_eq!(s[0][0..2], ["checkout", "ClusterIP"]);
    assert!(s[0][2].starts_with("10.96."), "{svc}");
    assert_eq!(s[0][3..5], ["<none>", "80/TCP"]);
    let cms = sim.kubectl(&["get", "configmaps"]);
    assert_eq!(header(&cms), ["NAME", "DATA", "AGE"]);
    assert!(
        rows(&cms).iter().any(|r| r[..2] == ["checkout-flags", "1"]),
        "{cms}"
    );
    let events = sim.kubectl(&["get", "events"]);
    assert_eq!(
        header(&events),
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert!(
        events
            .lines()
            .any(|l| l.contains("Scheduled") && l.contains("Successfully assigned shop/checkout-")),
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|l| l.contains("ScalingReplicaSet") && l.contains("deployment/checkout")),
        "{events}"
    );
    let ns = sim.kubectl(&["get", "namespaces"]);
    assert_eq!(header(&ns), ["NAME", "STATUS", "AGE"]);
    assert!(
        rows(&ns).iter().any(|r| r[..2] == ["shop", "Active"]),
        "{ns}"
    );
    assert!(rows(&ns).iter().any(|r| r[0] == "default"), "{ns}");
    let routes = sim.kubectl(&["get", "httproutes", "-A"]);
    assert_eq!(header(&routes), ["NAMESPACE", "NAME", "HOSTNAMES", "AGE"]);
    assert_eq!(rows(&routes)[0][..2], ["shop", "checkout"]);

    // Structured output: -o yaml and -o json carry the server's bookkeeping.
    let yaml = sim.kubectl(&["get", "deployment", "checkout", "-o", "yaml"]);
    for needle in [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "generation: 1",
        "resourceVersion: \"",
        "uid: ",
        "creationTimestamp: \"",
        "observedGeneration: 1",
        "deployment.kubernetes.io/revision: \"1\"",
    ] {
        assert!(yaml.contains(needle), "missing {needle:?} in\n{yaml}");
    }
    let list = sim.json(&["get", "pods", "-l", "track=canary"]);
    assert_eq!(list["kind"], "List");
    let pod = &list["items"][0];
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
    assert!(pod["metadata"]["labels"]["pod-template-hash"].is_string());
    assert_eq!(pod["status"]["phase"], "Running");
    // The real Kubernetes: core objects such as ConfigMaps have no generation.
    let cm = sim.json(&["get", "configmap", "checkout-flags"]);
    assert!(cm["metadata"]["generation"].is_null(), "{cm}");
    let nodes = sim.kubectl(&["get", "nodes"]);
    assert_eq!(
        header(&nodes),
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    );
    assert!(sim.kubernetes.starts_with("http://"));
}

#[test]
fn set_image_rolls_out_and_history_undo_and_to_revision_follow_it() {
    if !kubectl_present() {
        return;
    }
    let sim = start_sim();
    let out = sim.kubectl(&[
        "set",
        "image",
        "deployment/checkout",
        "app=registry.example.com/shop/checkout:2.4.0",
    ]);
    assert_eq!(out.trim(), "deployment.apps/checkout image updated");
    // rollout status follows the rolling update and returns when it is done.
    let status = sim.kubectl(&["rollout", "status", "deployment/checkout", "--timeout=60s"]);
    assert!(
        status.contains("Waiting for deployment \"checkout\" rollout to finish"),
        "{status}"
    );
    assert!(
        status
            .trim_end()
            .ends_with("deployment \"checkout\" successfully rolled out"),
        "{status}"
    );
    let rs = sim.kubectl(&["get", "rs", "-l", "track=stable"]);
    let rs_rows = rows(&rs);
    assert_eq!(rs_rows.len(), 2, "{rs}");
    let desired: Vec<(&str, &str)> = rs_rows.iter().map(|r| (r[1], r[3])).collect();
    assert!(
        desired.contains(&("4", "4")) && desired.contains(&("0", "0")),
        "{rs}"
    );
    // The scale-up/down events honour maxSurge 25% (1) and maxUnavailable 25% (1).
    let events = sim.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "reason=ScalingReplicaSet",
    ]);
    assert!(events.contains("from 4 to 3"), "{events}");
    assert!(!events.contains("from 4 to 2"), "{events}");

    let history = sim.kubectl(&["rollout", "history", "deployment/checkout"]);
    assert_eq!(
        history.lines().map(str::trim_end).collect::<Vec<_>>()[..4],
        [
            "deployment.apps/checkout",
            "REVISION  CHANGE-CAUSE",
            "1         <none>",
            "2         <none>"
        ]
    );
    let rev2 = sim.kubectl(&["rollout", "history", "deployment/checkout", "--revision=2"]);
    assert!(rev2.contains("checkout:2.4.0"), "{rev2}");

    let undo = sim.kubectl(&["rollout", "undo", "deployment/checkout"]);
    assert_eq!(undo.trim(), "deployment.apps/checkout rolled back");
    sim.kubectl(&["rollout", "status", "deployment/checkout", "--timeout=60s"]);
    let image = sim.kubectl(&[
        "get",
        "deployment",
        "checkout",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "registry.example.com/shop/checkout:2.3.0");
    // Revision 1 became revision 3.
    let history = sim.kubectl(&["rollout", "history", "deployment/checkout"]);
    let revs: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revs, ["2", "3"], "{history}");

    sim.kubectl(&["rollout", "undo", "deployment/checkout", "--to-revision=2"]);
    sim.kubectl(&["rollout", "status", "deployment/checkout", "--timeout=60s"]);
    let d = sim.json(&["get", "deployment", "checkout"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/checkout:2.4.0"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    assert_eq!(d["status"]["updatedReplicas"], 4);
}

#[test]
fn pause_resume_restart_and_scale_act_as_on_a_real_cluster() {
    if !kubectl_present() {
        return;
    }
    let sim = start_sim();
    assert_eq!(
        sim.kubectl(&["rollout", "pause", "deployment/checkout"])
            .trim(),
        "deployment.apps/checkout paused"
    );
    sim.kubectl(&[
        "set",
        "image",
        "deployment/checkout",
        "app=registry.example.com/shop/checkout:2.4.0",
    ]);
    // Paused: the template change makes no new ReplicaSet.
    let d = sim.json(&["get", "deployment", "checkout"]);
    assert_eq!(d["spec"]["paused"], true);
    let conditions = d["status"]["conditions"].to_string();
    sim.wait_for("the paused condition", |s| {
        let d = s.json(&["get", "deployment", "checkout"]);
        d["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["reason"] == "DeploymentPaused")
            .then_some(())
    });
    assert_eq!(
        rows(&sim.kubectl(&["get", "rs", "-l", "track=stable"])).len(),
        1,
        "{conditions}"
    );
    assert_eq!(
        sim.kubectl(&["rollout", "resume", "deployment/checkout"])
            .trim(),
        "deployment.apps/checkout resumed"
    );
    sim.kubectl(&["rollout", "status", "deployment/checkout", "--timeout=60s"]);
    assert_eq!(
        rows(&sim.kubectl(&["get", "rs", "-l", "track=stable"])).len(),
        2
    );

    let before = pod_names(&sim, "track=canary");
    assert_eq!(
        sim.kubectl(&["rollout", "restart", "deployment/checkout-canary"])
            .trim(),
        "deployment.apps/checkout-canary restarted"
    );
    sim.kubectl(&[
        "rollout",
        "status",
        "deployment/checkout-canary",
        "--timeout=60s",
    ]);
    let restarted = sim.json(&["get", "deployment", "checkout-canary"]);
    assert!(
        restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    sim.wait_for("every canary pod replaced", |s| {
        let after = pod_names(s, "track=canary");
        (after.len() == 2 && after.iter().all(|p| !before.contains(p))).then_some(())
    });

    assert_eq!(
        sim.kubectl(&["scale", "deployment/checkout", "--replicas=6"])
            .trim(),
        "deployment.apps/checkout scaled"
    );
    sim.wait_for("six ready stable pods", |s| {
        let out = s.kubectl(&["get", "deployment", "checkout", "--no-headers"]);
        (rows(&format!("\n{out}"))[0][1] == "6/6").then_some(())
    });
    sim.kubectl(&["scale", "deployment/checkout", "--replicas=2"]);
    sim.wait_for("two stable pods", |s| {
        (pod_names(s, "track=stable").len() == 2).then_some(())
    });
}

#[test]
fn delete_create_patch_label_and_annotate_change_objects_as_on_a_real_cluster() {
    if !kubectl_present() {
        return;
    }
    let sim = start_sim();
    let victim = pod_names(&sim, "track=canary")[0].clone();
    let out = sim.kubectl(&["delete", &victim]);
    assert_eq!(
        out.trim(),
        format!("pod \"{}\" deleted", victim.trim_start_matches("pod/"))
    );
    sim.wait_for("the ReplicaSet to replace the deleted pod", |s| {
        let table = s.kubectl(&["get", "pods", "-l", "track=canary"]);
        let r = rows(&table);
        (r.len() == 2
            && r.iter().all(|r| r[1] == "1/1" && r[2] == "Running")
            && !table.contains(victim.trim_start_matches("pod/")))
        .then_some(())
    });

    let out = sim.kubectl(&[
        "create",
        "configmap",
        "drill",
        "--from-literal=mode=calm",
        "--from-literal=level=1",
    ]);
    assert_eq!(out.trim(), "configmap/drill created");
    let rv0: u64 = sim.json(&["get", "cm", "drill"])["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("numeric resourceVersion");

    let out = sim.kubectl(&[
        "patch",
        "cm",
        "drill",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"mode":"loud"}}"#,
    ]);
    assert_eq!(out.trim(), "configmap/drill patched");
    sim.kubectl(&[
        "patch",
        "cm",
        "drill",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/data/level"},{"op":"add","path":"/data/owner","value":"sre"}]"#,
    ]);
    let cm = sim.json(&["get", "cm", "drill"]);
    assert_eq!(
        cm["data"],
        serde_json::json!({"mode": "loud", "owner": "sre"})
    );
    let rv1: u64 = cm["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("numeric resourceVersion");
    assert!(rv1 > rv0, "resourceVersion must grow: {rv0} -> {rv1}");

    // Strategic merge: containers merge by name, keeping the other fields.
    sim.kubectl(&[
        "patch",
        "deployment",
        "checkout-canary",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"MODE","value":"drill"}]}]}}}}"#,
    ]);
    let d = sim.json(&["get", "deployment", "checkout-canary"]);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0]["image"],
        "registry.example.com/shop/checkout:2.4.0"
    );
    assert_eq!(containers[0]["env"][0]["value"], "drill");
    assert_eq!(d["metadata"]["generation"], 2);

    assert_eq!(
        sim.kubectl(&["label", "cm", "drill", "tier=gold"]).trim(),
        "configmap/drill labeled"
    );
    assert_eq!(
        sim.kubectl(&["annotate", "cm", "drill", "owner=sre-team"])
            .trim(),
        "configmap/drill annotated"
    );
    let labelled = sim.kubectl(&["get", "cm", "-l", "tier=gold", "--show-labels"]);
    assert_eq!(header(&labelled), ["NAME", "DATA", "AGE", "LABELS"]);
    assert_eq!(rows(&labelled).len(), 1, "{labelled}");
    assert_eq!(rows(&labelled)[0][..2], ["drill", "2"]);
    assert_eq!(rows(&labelled)[0][3], "tier=gold");
    assert_eq!(
        sim.kubectl(&[
            "get",
            "cm",
            "drill",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        "sre-team"
    );
    // Errors come back as Status objects that kubectl prints as a real server's.
    let missing = sim.run(&["get", "cm", "no-such-map"]);
    assert!(!missing.status.success());
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "Error from server (NotFound): configmaps \"no-such-map\" not found"
    );
    let dup = sim.run(&["create", "configmap", "drill"]);
    // (kubectl's create generators word AlreadyExists so, against a real server too.)
    assert!(
        String::from_utf8_lossy(&dup.stderr)
            .contains("error: failed to create configmap: configmaps \"drill\" already exists"),
        "{}",
        String::from_utf8_lossy(&dup.stderr)
    );
}

#[test]
fn get_watch_streams_changes_and_describe_shows_what_a_cluster_shows() {
    if !kubectl_present() {
        return;
    }
    let sim = start_sim();
    let mut watch = sim
        .command(&["get", "pods", "-l", "track=canary", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let next_line = |seen: &mut Vec<String>| {
        let l = rx
            .recv_timeout(DEADLINE)
            .expect("a line from kubectl get -w");
        seen.push(l);
    };
    // The initial list: header and the two canary pods.
    while seen.len() < 3 {
        next_line(&mut seen);
    }
    assert_eq!(
        header(&seen[0]),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    sim.kubectl(&["scale", "deployment/checkout-canary", "--replicas=3"]);
    let deadline = Instant::now() + DEADLINE;
    let new_running = loop {
        next_line(&mut seen);
        let last: Vec<&str> = seen[seen.len() - 1].split_whitespace().collect();
        let is_new = !seen[1..3].iter().any(|l| l.starts_with(last[0]));
        if is_new && last[1] == "1/1" && last[2] == "Running" {
            break last[0].to_string();
        }
        assert!(Instant::now() < deadline, "no new Running pod in {seen:#?}");
    };
    let stages: Vec<&str> = seen
        .iter()
        .filter(|l| l.starts_with(&new_running))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(stages.first(), Some(&"Pending"), "{seen:#?}");
    assert!(stages.contains(&"ContainerCreating"), "{seen:#?}");
    let _ = watch.kill();
    let _ = watch.wait();

    // The Deployment's status follows its pods a moment later.
    let describe = sim.wait_for("the deployment to count three available", |s| {
        let text = s.kubectl(&["describe", "deployment", "checkout-canary"]);
        squeezed(&text)
            .contains("3 available | 0 unavailable")
            .then_some(text)
    });
    for needle in [
        "Name:                   checkout-canary",
        "Namespace:              shop",
        "Selector:               app=checkout,track=canary",
        "Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable",
        "StrategyType:           RollingUpdate",
        "RollingUpdateStrategy:  25% max unavailable, 25% max surge",
        "Image:      registry.example.com/shop/checkout:2.4.0",
        "Available      True    MinimumReplicasAvailable",
        "Progressing    True    NewReplicaSetAvailable",
        "NewReplicaSet:   checkout-canary-",
        "ScalingReplicaSet",
        "deployment-controller",
    ] {
        assert!(
            describe.contains(needle),
            "missing {needle:?} in\n{describe}"
        );
    }
    let pod = sim.kubectl(&["describe", "pod", &new_running]);
    for needle in [
        format!("Name:             {new_running}"),
        "Namespace:        shop".to_string(),
        "Status:           Running".to_string(),
        "Controlled By:  ReplicaSet/checkout-canary-".to_string(),
        "State:          Running".to_string(),
        "Ready:          True".to_string(),
        "Restart Count:  0".to_string(),
        "Normal  Scheduled".to_string(),
        "default-scheduler  Successfully assigned shop/".to_string(),
        "Started container app".to_string(),
    ] {
        assert!(
            squeezed(&pod).contains(&squeezed(&needle)),
            "missing {needle:?} in\n{pod}"
        );
    }
}

#[test]
fn broken_images_crash_loop_or_fail_to_pull_and_rollout_status_keeps_waiting() {
    if !kubectl_present() {
        return;
    }
    let sim = start_sim();
    sim.kubectl(&[
        "set",
        "image",
        "deployment/checkout-canary",
        "app=registry.example.com/shop/checkout:2.5.0-crashloop",
    ]);
    let crashing = sim.wait_for("a pod in CrashLoopBackOff with restarts climbing", |s| {
        let table = s.kubectl(&["get", "pods", "-l", "track=canary"]);
        rows(&table)
            .into_iter()
            .find(|r| r[2] == "CrashLoopBackOff" && r[3].parse::<u32>().is_ok_and(|n| n >= 2))
            .map(|r| r[0].to_string())
    });
    // rollout status does not return while the new pods never become available.
    let waiting = sim.run(&[
        "rollout",
        "status",
        "deployment/checkout-canary",
        "--timeout=2s",
    ]);
    assert!(!waiting.status.success());
    assert!(
        String::from_utf8_lossy(&waiting.stdout).contains("Waiting for deployment"),
        "{}",
        String::from_utf8_lossy(&waiting.stdout)
    );
    assert!(
        String::from_utf8_lossy(&waiting.stderr).contains("timed out waiting for the condition"),
        "{}",
        String::from_utf8_lossy(&waiting.stderr)
    );
    // The container alternates between a short run and the back-off; catch it backing off.
    let describe = sim.wait_for("describe to show the back-off", |s| {
        let text = s.kubectl(&["describe", "pod", &crashing]);
        squeezed(&text)
            .contains("State: Waiting\nReason: CrashLoopBackOff")
            .then_some(text)
    });
    for needle in [
        "State:          Waiting",
        "Reason:       CrashLoopBackOff",
        "Last State:     Terminated",
        "Exit Code:    1",
        "Warning  BackOff",
        "Back-off restarting failed container app",
    ] {
        assert!(
            describe.contains(needle),
            "missing {needle:?} in\n{describe}"
        );
    }
    // The old ReplicaSet keeps serving: maxUnavailable 0 of 2.
    let stable_canary = rows(&sim.kubectl(&["get", "pods", "-l", "track=canary"]))
        .into_iter()
        .filter(|r| r[2] == "Running" && r[1] == "1/1")
        .count();
    assert_eq!(stable_canary, 2);

    sim.kubectl(&[
        "set",
        "image",
        "deployment/checkout-canary",
        "app=registry.example.com/shop/checkout:2.5.1-pullfail",
    ]);
    sim.wait_for("a pod in ImagePullBackOff", |s| {
        let table = s.kubectl(&["get", "pods", "-l", "track=canary"]);
        rows(&table)
            .iter()
            .any(|r| r[2] == "ImagePullBackOff")
            .then_some(())
    });
    sim.kubectl(&[
        "rollout",
        "undo",
        "deployment/checkout-canary",
        "--to-revision=1",
    ]);
    let done = sim.kubectl(&[
        "rollout",
        "status",
        "deployment/checkout-canary",
        "--timeout=60s",
    ]);
    assert!(done.contains("successfully rolled out"), "{done}");
}

#[test]
fn leases_are_listed_with_their_holder_and_applied_patched_and_deleted() {
    if !kubectl_present() {
        return;
    }
    let sim = spawn_sim();
    let resources = sim.kubectl(&["api-resources", "--api-group=coordination.k8s.io"]);
    assert!(
        rows(&resources)
            .iter()
            .any(|r| r[..] == ["leases", "coordination.k8s.io/v1", "true", "Lease"]),
        "{resources}"
    );
    let manifest = sim.home.path().join("lease.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: warroom-checkout\n  annotations:\n    warroom.dev/run-id: run-a\nspec:\n  holderIdentity: alice@host-1\n  leaseDurationSeconds: 15\n  renewTime: \"2025-06-01T10:02:30.000000Z\"\n",
    )
    .expect("manifest written");
    let manifest = manifest.to_string_lossy().into_owned();
    assert_eq!(
        sim.kubectl(&["apply", "-f", &manifest]).trim(),
        "lease.coordination.k8s.io/warroom-checkout created"
    );
    let table = sim.kubectl(&["get", "leases"]);
    assert_eq!(header(&table), ["NAME", "HOLDER", "AGE"]);
    assert_eq!(rows(&table).len(), 1, "{table}");
    assert_eq!(rows(&table)[0][..2], ["warroom-checkout", "alice@host-1"]);
    let lease = sim.json(&["get", "lease", "warroom-checkout"]);
    assert_eq!(lease["spec"]["renewTime"], "2025-06-01T10:02:30.000000Z");
    assert!(lease["metadata"]["generation"].is_null(), "{lease}");

    // A released lease: the holder cell is empty, as on a real cluster.
    assert_eq!(
        sim.kubectl(&[
            "patch",
            "lease",
            "warroom-checkout",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"holderIdentity":null}}"#,
        ])
        .trim(),
        "lease.coordination.k8s.io/warroom-checkout patched"
    );
    let released = sim.kubectl(&["get", "leases"]);
    assert_eq!(rows(&released)[0].len(), 2, "{released}");
    assert_eq!(rows(&released)[0][0], "warroom-checkout");

    assert_eq!(
        sim.kubectl(&["delete", "lease", "warroom-checkout"]).trim(),
        "lease.coordination.k8s.io \"warroom-checkout\" deleted"
    );
    let none = sim.run(&["get", "leases"]);
    assert!(none.status.success());
    assert_eq!(
        String::from_utf8_lossy(&none.stderr).trim(),
        "No resources found in shop namespace."
    );
}

#[test]
fn sim_stops_cleanly_on_sigterm() {
    let mut sim = start_sim_without_kubectl();
    let pid = sim.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + DEADLINE;
    let code = loop {
        if let Some(s) = sim.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "warroom sim ignored SIGTERM");
        std::thread::sleep(POLL);
    };
    assert!(code.success(), "{code:?}");
}

/// `warroom sim` for tests that only need the process (no kubectl).
fn start_sim_without_kubectl() -> Sim {
    let sim = spawn_sim();
    let text = std::fs::read_to_string(&sim.kubeconfig).unwrap_or_default();
    // One context per environment of the demo plan, each with its namespace.
    for ctx in ["sim-development", "sim-staging", "sim-production"] {
        assert!(text.contains(ctx), "{ctx} missing in\n{text}");
    }
    sim
}
