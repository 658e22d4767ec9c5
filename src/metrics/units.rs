//! How metric values read: units guessed from the metric's name, values written with them.
//! Pure text formatting, shared by the engine's verdicts and the screen.

/// How a metric's values read best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A ratio shown in percent (error rate, CPU of limit).
    Ratio,
    /// Seconds shown in milliseconds.
    Seconds,
    Plain,
}

/// Guesses the unit from the metric's name, as the plan's examples name them.
pub fn unit_of(metric: &str) -> Unit {
    let m = metric.to_lowercase();
    if m.contains("latency") || m.contains("duration") || m.ends_with("_seconds") {
        Unit::Seconds
    } else if m.contains("rate") || m.contains("ratio") || m.contains("cpu") || m.contains("error")
    {
        Unit::Ratio
    } else {
        Unit::Plain
    }
}

/// A value with its unit; "no data" for `None`.
pub fn value(metric: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "no data".to_string();
    };
    match unit_of(metric) {
        Unit::Ratio => {
            let p = v * 100.0;
            if p != 0.0 && p.abs() < 0.1 {
                format!("{p:.3}%")
            } else {
                format!("{p:.2}%")
            }
        }
        Unit::Seconds => format!("{:.0}ms", v * 1000.0),
        Unit::Plain => format!("{v:.3}"),
    }
}
