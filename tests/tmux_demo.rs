//! End to end as a person would use it: `warroom demo` in a tmux pane, keys sent with
//! send-keys, the screen read with capture-pane. Polls the screen with a deadline.

mod common;

use common::tmux::Session;

fn tmux_available() -> bool {
    common::tool_available("tmux", &["-V"], "end-to-end demo test")
}

/// `warroom demo ARGS --operator e2e` run by a shell in a tmux pane of a server of the test's
/// own, its journal, log and config in a directory of the test's (kept as long as the guard),
/// so that after `q` the pane shows what warroom left: `before`, then `after exit=CODE`.
fn demo_in_a_shell(
    name: &str,
    args: &str,
    width: u16,
    height: u16,
) -> (Session, tempfile::TempDir) {
    let bin = env!("CARGO_BIN_EXE_warroom");
    let state_dir = tempfile::tempdir().expect("tempdir");
    let state = state_dir.path().display().to_string();
    let script = format!(
        "printf 'before\\n'; XDG_STATE_HOME={state} XDG_CONFIG_HOME={state} {bin} demo {args} --operator e2e; printf 'after exit=%s\\n' $?; sleep 60"
    );
    let session = Session::start(
        &format!("warroom-{name}"),
        name,
        width,
        height,
        &["sh", "-c", &script],
    );
    (session, state_dir)
}

#[test]
fn demo_in_tmux_shows_running_pods_moves_weight_rolls_back_and_quits_cleanly() {
    if !tmux_available() {
        return;
    }
    let (session, _state) = demo_in_a_shell("demo", "--speed 4", 120, 40);
    let screen = session.wait_for("six Running pods and a live Prometheus", |s| {
        s.matches(" Running ").count() >= 6 && s.contains("prometheus ● live")
    });
    assert!(screen.contains("kubeconfig: "), "{screen}");
    assert!(screen.contains("canary 0%"), "{screen}");

    session.keys("+");
    session.wait_for("canary weight 10%", |s| {
        s.contains("canary 10%") && s.contains("stored on HTTPRoute shop/checkout")
    });

    session.keys("!");
    let screen = session.wait_for("rollback to 0%", |s| {
        s.contains("canary 0%")
            && s.contains("ROLLED BACK")
            && s.contains("canary weight 0% stored")
    });
    assert!(screen.contains("ROLLBACK (immediate) by e2e"), "{screen}");

    session.keys("q");
    let screen = session.wait_for("the shell after exit", |s| s.contains("after exit="));
    assert!(
        screen.contains("before"),
        "the screen before warroom is back:\n{screen}"
    );
    assert!(
        !screen.contains("WARROOM"),
        "the console left its screen behind:\n{screen}"
    );
    assert!(
        screen.contains("after exit=3"),
        "rolled back exits with 3:\n{screen}"
    );
}

/// The drill a team runs before a window: a weight step, an error spike from the drill menu,
/// the countdown cancelled with `x`, a second spike, `!`; the weight read back through a kube
/// client is 0, the screen says ROLLED BACK, and `q` leaves the shell as it was.
#[test]
fn a_drill_in_the_demo_countdown_cancelled_then_rolled_back_with_bang() {
    if !tmux_available() {
        return;
    }
    let (session, _state) = demo_in_a_shell("drill", "--speed 10", 160, 45);
    let screen = session.wait_for("running pods and live sources", |s| {
        s.matches(" Running ").count() >= 6 && s.contains("prometheus ● live")
    });
    let kubeconfig = screen
        .split("kubeconfig: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the header shows the simulator's kubeconfig")
        .to_string();

    // Start, tick the checklist item: the weight step runs, then the hold.
    session.keys("n");
    session.wait_for("the checklist item waiting", |s| {
        s.contains("n  pass check: Container image")
    });
    session.keys("n");
    session.wait_for("the weight step done and the hold running", |s| {
        s.contains("✓ weight → 10%") && s.contains("▶ hold 20s")
    });

    session.keys("D");
    session.wait_for("the drill menu", |s| {
        s.contains("Drills") && s.contains("error spike on the canary")
    });
    session.keys("Enter");
    let screen = session.wait_for("the countdown", |s| s.contains("ROLLBACK IMMEDIATE IN"));
    assert!(screen.contains("DRILL: error_spike"), "{screen}");
    assert!(screen.contains("CANCEL AUTO-ROLLBACK"), "{screen}");

    session.keys("x");
    let screen = session.wait_for("the countdown cancelled", |s| {
        s.contains("e2e cancelled the automatic rollback") && s.contains(" PAUSED ")
    });
    assert!(!screen.contains("ROLLBACK IMMEDIATE IN"), "{screen}");

    session.keys("D");
    session.wait_for("the drill menu again", |s| s.contains("Drills"));
    session.keys("Enter");
    session.wait_for("the second spike injected", |s| {
        s.matches("done by the simulator").count() >= 2
    });

    session.keys("!");
    let screen = session.wait_for("rolled back", |s| {
        s.contains("ROLLED BACK") && s.contains("canary weight 0% stored")
    });
    assert!(screen.contains("ROLLBACK (immediate) by e2e"), "{screen}");

    let weight = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let conn = warroom::cluster::client::connect(
                Some(std::path::Path::new(&kubeconfig)),
                Some("sim-development"),
            )
            .await
            .expect("the simulator's API answers");
            warroom::app::console::router_for(&common::demo_plan(), &conn, "shop")
                .expect("router")
                .weight()
                .await
                .expect("weight read")
        });
    assert_eq!(weight.percent(), 0, "the HTTPRoute's canary weight");

    session.keys("q");
    let screen = session.wait_for("the shell after exit", |s| s.contains("after exit="));
    assert!(screen.contains("before"), "{screen}");
    assert!(!screen.contains("WARROOM"), "{screen}");
    assert!(screen.contains("after exit=3"), "{screen}");
}
