//! The journal: an append-only record of a run, one JSON line per event. It is what `--resume`
//! continues from, what `warroom report` reads and what `warroom watch` follows.

pub mod progress;
pub mod read;
pub mod record;
pub mod session;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use record::{Line, OperatorCommand, Record, VERSION};
pub use writer::Journal;

/// A plan name as a file name: [`name_part`], or `plan` when nothing of it is left
/// (`checkout 2.4.0` → `checkout-2-4-0`).
pub fn slug(name: &str) -> String {
    let part = name_part(name);
    if part.is_empty() {
        "plan".to_string()
    } else {
        part
    }
}

/// A plan name as part of a file or Kubernetes object name: lowercase ASCII letters and digits,
/// every run of other characters one `-`, no `-` at either end; empty when nothing is left.
/// The journal's file name and the plan's Lease are both named from it.
pub fn name_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Where journals go by default: `$XDG_STATE_HOME/warroom`, else `~/.local/state/warroom`.
pub fn default_dir() -> Option<PathBuf> {
    crate::config::xdg_dir("XDG_STATE_HOME", ".local/state")
}

/// `<dir>/<plan slug>-<UTC start>.jsonl`.
pub fn default_path(dir: &Path, plan_name: &str, start: SystemTime) -> PathBuf {
    let stamp = jiff::Timestamp::try_from(start)
        .map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|_| "19700101T000000Z".to_string());
    dir.join(format!("{}-{stamp}.jsonl", slug(plan_name)))
}

/// The newest journal of `plan_name` in `dir` (names sort by their UTC start).
pub fn newest(dir: &Path, plan_name: &str) -> Option<PathBuf> {
    let prefix = format!("{}-", slug(plan_name));
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|rest| rest.strip_suffix(".jsonl"))
                .is_some_and(is_stamp)
        })
        .max()
}

/// `20261202T100200Z`: the UTC start in a default journal's name.
fn is_stamp(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// SHA-256 of `bytes`, hex.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_become_file_names() {
        assert_eq!(slug("checkout 2.4.0"), "checkout-2-4-0");
        assert_eq!(slug("  Payments: Blue/Green!! "), "payments-blue-green");
        assert_eq!(slug("—"), "plan");
    }

    #[test]
    fn the_newest_journal_of_a_plan_is_picked_by_its_start() {
        let dir = tempfile::tempdir().expect("dir");
        for name in [
            "checkout-2-4-0-20261201T100000Z.jsonl",
            "checkout-2-4-0-20261202T090000Z.jsonl",
            "checkout-2-4-0-20261202T090000Z.report.md",
            "checkout-2-4-0-canary-20261203T000000Z.jsonl",
            "checkout-2-4-0-2-20261204T000000Z.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "").expect("write");
        }
        let newest = newest(dir.path(), "checkout 2.4.0").expect("found");
        assert!(
            newest.ends_with("checkout-2-4-0-20261202T090000Z.jsonl"),
            "{newest:?}"
        );
    }

    #[test]
    fn sha256_is_the_usual_hex() {
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
