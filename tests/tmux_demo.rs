//! End to end as a person would use it: `warroom demo` in a tmux pane, keys sent with
//! send-keys, the screen read with capture-pane. Polls the screen with a deadline.

mod common;

use common::tmux::{Session, tmux};

fn tmux_available() -> bool {
    common::tool_available("tmux", &["-V"], "end-to-end demo test")
}

#[test]
fn demo_in_tmux_shows_running_pods_moves_weight_rolls_back_and_quits_cleanly() {
    if !tmux_available() {
        return;
    }
    let socket = format!("warroom-test-{}", std::process::id());
    let session = Session {
        socket: socket.clone(),
        name: "demo".to_string(),
    };
    let bin = env!("CARGO_BIN_EXE_warroom");
    // The demo's journal and log go to the test's directory, never the user's.
    let state_dir = tempfile::tempdir().expect("tempdir");
    let state = state_dir.path().display().to_string();
    // A shell runs the demo so that after `q` we can see what the terminal is left with.
    let script = format!(
        "printf 'before\\n'; XDG_STATE_HOME={state} {bin} demo --speed 4 --operator e2e; printf 'after exit=%s\\n' $?; sleep 60"
    );
    tmux(&[
        "-L",
        &socket,
        "new-session",
        "-d",
        "-s",
        "demo",
        "-x",
        "120",
        "-y",
        "40",
        "sh",
        "-c",
        &script,
    ])
    .expect("tmux starts the demo");

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
