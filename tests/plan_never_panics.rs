//! Property test: checking any text — random YAML-ish input and mutations of a real plan —
//! returns diagnostics and never panics. 3000 cases per property unless PLAN_FUZZ_CASES says.

use std::path::Path;

use proptest::prelude::*;
use warroom::plan;

const DEMO: &str = include_str!("../plans/demo.yaml");

/// Fragments that steer random text into YAML the plan loader has to think about.
const PIECES: &[&str] = &[
    "version: 1\n",
    "phases:\n",
    "  - name: P\n",
    "    steps:\n",
    "      - weight: ",
    "      - hold: ",
    "environment: ",
    "{",
    "}",
    "[",
    "]",
    ": ",
    "- ",
    "\n",
    "  ",
    "\"",
    "'",
    "&a ",
    "*a",
    "<<: ",
    "!!str ",
    "|\n",
    ">-\n",
    "#",
    "{{",
    "}}",
    "110",
    "-5m",
    "0s",
    "1h30m",
    "null",
    "~",
    "ä",
    "\t",
    "rollback:\n",
    "  immediate: { actions: [ { weight: 0 } ] }\n",
    "metrics: { queries: { q: ",
    "sum(rate(x[{{rate}}]))",
    "}}\n",
    "---\n",
    "...\n",
    "window: { from: \"09:00\", to: ",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(PIECES).prop_map(str::to_string),
            "[ -~]{0,12}",
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// The demo plan with one span of bytes replaced (on char boundaries).
fn mutated_demo() -> impl Strategy<Value = String> {
    let chars: Vec<char> = DEMO.chars().collect();
    let n = chars.len();
    (0..n, 0usize..40, yamlish()).prop_map(move |(at, len, insert)| {
        let end = (at + len).min(n);
        let mut out: String = chars[..at].iter().collect();
        out.push_str(&insert);
        out.extend(chars[end..].iter());
        out
    })
}

/// 3000 per property by default; `PLAN_FUZZ_CASES=100000` for a longer run.
fn cases() -> u32 {
    std::env::var("PLAN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn check_does_not_panic(text: &str) {
    let checked = plan::check(Path::new("fuzz.yaml"), text);
    // Rendering touches every position against the source: it must not panic either.
    let _ = checked.render();
    for d in &checked.diagnostics {
        assert!(!d.message.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn checking_random_yamlish_text_never_panics(text in yamlish()) {
        check_does_not_panic(&text);
    }

    #[test]
    fn checking_a_mutated_demo_plan_never_panics(text in mutated_demo()) {
        check_does_not_panic(&text);
    }
}
