//! Helpers shared by integration tests: outside tools that a test needs.
//! Test scaffolding only; no assertions about warroom itself live here.

use std::process::Command;

/// Whether `tool` runs (`tool args…` exits 0). When it does not: a failure when `CI` is set
/// (`.ci/run` installs it), a loud skip otherwise.
pub fn tool_available(tool: &str, args: &[&str], test: &str) -> bool {
    let found = Command::new(tool)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required when CI is set (.ci/run installs it)"
        );
        eprintln!("\n*** SKIPPED {test}: {tool} not found on PATH ***\n");
    }
    found
}
