//! The PromQL tree walker: selectors, offsets, unary minus and binary operators with vector matching.
//! Functions and aggregations live in their own files; parsing belongs to promql-parser alone.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB,
};
use promql_parser::parser::{
    AtModifier, BinaryExpr, Expr, LabelModifier, Offset, SubqueryExpr, VectorMatchCardinality,
    VectorSelector,
};

use super::value::{Element, QueryError, RangeSeries, Value, drop_name};
use super::{aggregate, functions};
use crate::sim::tsdb::{LabelMatcher, Labels, METRIC_NAME, MatchKind, Tsdb};

/// Prometheus's default lookback for instant selectors.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Step of a subquery written without one (`x[5m:]`): Prometheus uses its global evaluation
/// interval, whose default is one minute.
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Most inner evaluations one query may run through subqueries. Nested subqueries multiply, so
/// without a cap one query string could keep a core busy for hours.
pub const MAX_SUBQUERY_STEPS: u64 = 1_000_000;

/// Everything an evaluation needs besides the expression and the step time.
pub struct Evaluator<'a> {
    pub tsdb: &'a Tsdb,
    /// Query start and end, for `@ start()` and `@ end()`.
    pub start_ms: i64,
    pub end_ms: i64,
    pub lookback_ms: i64,
    /// Subquery steps evaluated so far, checked against [`MAX_SUBQUERY_STEPS`].
    pub subquery_steps: std::cell::Cell<u64>,
}

/// A range-vector argument: its series and the window they were selected from.
pub struct MatrixArg {
    pub series: Vec<RangeSeries>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub range_ms: i64,
}

pub(crate) fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

impl Evaluator<'_> {
    pub fn eval(&self, expr: &Expr, t: i64) -> Result<Value, QueryError> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant_selector(vs, t)?)),
            Expr::MatrixSelector(ms) => {
                let (series, _, _) = self.range_selector(&ms.vs, duration_ms(&ms.range), t)?;
                Ok(Value::Matrix(series))
            }
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => {
                    let out: Vec<Element> = v
                        .into_iter()
                        .map(|e| Element {
                            labels: drop_name(e.labels),
                            value: -e.value,
                        })
                        .collect();
                    ensure_unique(&out)?;
                    Ok(Value::Vector(out))
                }
                other => Err(QueryError::Execution(format!(
                    "unary minus is not defined on a {}",
                    other.type_name()
                ))),
            },
            Expr::Binary(b) => self.binary(b, t),
            Expr::Call(c) => functions::call(self, c, t),
            Expr::Aggregate(a) => aggregate::eval(self, a, t),
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq, t)?.series)),
            Expr::Extension(_) => Err(QueryError::Unsupported("extension expressions".into())),
        }
    }

    /// Evaluates an expression that must produce an instant vector.
    pub fn eval_vector(&self, expr: &Expr, t: i64) -> Result<Vec<Element>, QueryError> {
        match self.eval(expr, t)? {
            Value::Vector(v) => Ok(v),
            other => Err(QueryError::Execution(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an expression that must produce a scalar.
    pub fn eval_scalar(&self, expr: &Expr, t: i64) -> Result<f64, QueryError> {
        match self.eval(expr, t)? {
            Value::Scalar(v) => Ok(v),
            other => Err(QueryError::Execution(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// The time a selector reads at: `@` pins it, `offset` shifts it back.
    fn selector_time(&self, vs: &VectorSelector, t: i64) -> i64 {
        self.pinned_time(&vs.at, t)
            .saturating_sub(offset_ms(&vs.offset))
    }

    fn pinned_time(&self, at: &Option<AtModifier>, t: i64) -> i64 {
        match at {
            None => t,
            Some(AtModifier::Start) => self.start_ms,
            Some(AtModifier::End) => self.end_ms,
            Some(AtModifier::At(st)) => match st.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => duration_ms(&d),
                Err(e) => -duration_ms(&e.duration()),
            },
        }
    }

    /// A function's range-vector argument: a matrix selector or a subquery (parenthesised or not).
    pub fn matrix_arg(&self, e: &Expr, t: i64) -> Result<MatrixArg, QueryError> {
        match e {
            Expr::MatrixSelector(ms) => {
                let range_ms = duration_ms(&ms.range);
                let (series, start_ms, end_ms) = self.range_selector(&ms.vs, range_ms, t)?;
                Ok(MatrixArg {
                    series,
                    start_ms,
                    end_ms,
                    range_ms,
                })
            }
            Expr::Subquery(sq) => self.subquery(sq, t),
            Expr::Paren(p) => self.matrix_arg(&p.expr, t),
            _ => Err(QueryError::Execution(
                "expected a range vector as function argument".into(),
            )),
        }
    }

    /// Evaluates `expr[range:step]` at every multiple of `step` inside `(end - range, end]`,
    /// the absolute alignment Prometheus uses so consecutive queries see the same points.
    pub fn subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<MatrixArg, QueryError> {
        let end = self
            .pinned_time(&sq.at, t)
            .saturating_sub(offset_ms(&sq.offset));
        let range_ms = duration_ms(&sq.range);
        let step = match &sq.step {
            Some(d) => duration_ms(d),
            None => DEFAULT_SUBQUERY_STEP_MS,
        };
        if step <= 0 {
            return Err(QueryError::BadData("subquery step must be positive".into()));
        }
        let start = end.saturating_sub(range_ms);
        let steps = u64::try_from(range_ms / step).unwrap_or(u64::MAX);
        let used = self.subquery_steps.get().saturating_add(steps);
        if used > MAX_SUBQUERY_STEPS {
            return Err(QueryError::Execution(format!(
                "subqueries would evaluate more than {MAX_SUBQUERY_STEPS} steps; use a coarser step"
            )));
        }
        self.subquery_steps.set(used);
        let mut ts = start.div_euclid(step).saturating_mul(step);
        if ts <= start {
            ts = ts.saturating_add(step);
        }
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut series: Vec<RangeSeries> = Vec::new();
        while ts <= end {
            for e in self.eval_vector(&sq.expr, ts)? {
                match index.get(&e.labels) {
                    Some(&i) => series[i].points.push((ts, e.value)),
                    None => {
                        index.insert(e.labels.clone(), series.len());
                        series.push(RangeSeries {
                            labels: e.labels,
                            points: vec![(ts, e.value)],
                        });
                    }
                }
            }
            ts = match ts.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        Ok(MatrixArg {
            series,
            start_ms: start,
            end_ms: end,
            range_ms,
        })
    }

    /// Series for a selector with samples in `(end - range, end]`, where `end` is the selector time.
    fn select(
        &self,
        vs: &VectorSelector,
        range_ms: i64,
        t: i64,
    ) -> Result<(Vec<crate::sim::tsdb::SeriesSamples>, i64), QueryError> {
        let end = self.selector_time(vs, t);
        let start = end.saturating_sub(range_ms);
        let groups = matcher_groups(vs)?;
        let mut out = Vec::new();
        for g in &groups {
            out.extend(self.tsdb.select(g, start, end));
        }
        Ok((union(out, |s| &s.labels, groups.len()), end))
    }

    /// Instant selector: the newest sample in `(t - lookback, t]` of every matching series.
    pub fn instant_selector(
        &self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Vec<Element>, QueryError> {
        Ok(self
            .instant_selector_with_times(vs, t)?
            .into_iter()
            .map(|(e, _)| e)
            .collect())
    }

    /// Instant selector that also reports each sample's own timestamp, for `timestamp()`.
    pub fn instant_selector_with_times(
        &self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Vec<(Element, i64)>, QueryError> {
        let end = self.selector_time(vs, t);
        let start = end.saturating_sub(self.lookback_ms);
        let groups = matcher_groups(vs)?;
        let mut out = Vec::new();
        for g in &groups {
            out.extend(
                self.tsdb
                    .select_last(g, start, end)
                    .into_iter()
                    .map(|(labels, (ts, value))| (Element { labels, value }, ts)),
            );
        }
        Ok(union(out, |(e, _)| &e.labels, groups.len()))
    }

    /// Range selector: all samples in `(t - range, t]`. Also returns the range's start and end,
    /// which rate-like functions extrapolate to.
    pub fn range_selector(
        &self,
        vs: &VectorSelector,
        range_ms: i64,
        t: i64,
    ) -> Result<(Vec<RangeSeries>, i64, i64), QueryError> {
        let (series, end) = self.select(vs, range_ms, t)?;
        let out = series
            .into_iter()
            .map(|s| RangeSeries {
                labels: s.labels,
                points: s.samples,
            })
            .collect();
        Ok((out, end.saturating_sub(range_ms), end))
    }

    fn binary(&self, b: &BinaryExpr, t: i64) -> Result<Value, QueryError> {
        let op = b.op.id();
        let modifier = b.modifier.as_ref();
        if let Some(m) = modifier
            && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
        {
            return Err(QueryError::Unsupported("fill modifiers".into()));
        }
        let return_bool = b.return_bool();
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                let (v, keep) = scalar_op(op, l, r)?;
                if is_comparison(op) {
                    // Scalar comparisons always carry `bool` (the parser insists on it).
                    Ok(Value::Scalar(if keep { 1.0 } else { 0.0 }))
                } else {
                    Ok(Value::Scalar(v))
                }
            }
            (Value::Vector(v), Value::Scalar(s)) => {
                vector_scalar(op, v, s, false, return_bool).map(Value::Vector)
            }
            (Value::Scalar(s), Value::Vector(v)) => {
                vector_scalar(op, v, s, true, return_bool).map(Value::Vector)
            }
            (Value::Vector(l), Value::Vector(r)) => {
                let matching = modifier.and_then(|m| m.matching.as_ref());
                let card = modifier
                    .map(|m| m.card.clone())
                    .unwrap_or(VectorMatchCardinality::OneToOne);
                match op {
                    T_LAND => Ok(Value::Vector(set_and(l, r, matching))),
                    T_LOR => Ok(Value::Vector(set_or(l, r, matching))),
                    T_LUNLESS => Ok(Value::Vector(set_unless(l, r, matching))),
                    _ => vector_vector(op, l, r, matching, &card, return_bool).map(Value::Vector),
                }
            }
            (l, r) => Err(QueryError::Execution(format!(
                "binary operator {} is not defined between {} and {}",
                b.op,
                l.type_name(),
                r.type_name()
            ))),
        }
    }
}

/// `{a="x" or b="y"}` selects the union of its alternatives, each series once.
fn union<T>(items: Vec<T>, labels: impl Fn(&T) -> &Labels, groups: usize) -> Vec<T> {
    if groups <= 1 {
        return items;
    }
    let mut seen = HashSet::new();
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for it in items {
        if seen.insert(labels(&it).clone()) {
            out.push(it);
        }
    }
    out.sort_by(|a, b| labels(a).cmp(labels(b)));
    out
}

/// Turns a selector into one or more conjunctions of matchers (more than one for `or` inside
/// braces). The metric name before the braces joins every conjunction.
pub fn matcher_groups(vs: &VectorSelector) -> Result<Vec<Vec<LabelMatcher>>, QueryError> {
    let name = vs
        .name
        .as_ref()
        .map(|n| LabelMatcher::equal(METRIC_NAME, n));
    let convert = |ms: &[Matcher]| -> Vec<LabelMatcher> {
        name.iter()
            .cloned()
            .chain(ms.iter().map(convert_matcher))
            .collect()
    };
    let mut groups = Vec::new();
    if !vs.matchers.matchers.is_empty() || vs.matchers.or_matchers.is_empty() {
        groups.push(convert(&vs.matchers.matchers));
    }
    for g in &vs.matchers.or_matchers {
        groups.push(convert(g));
    }
    if groups.iter().all(|g| g.is_empty()) {
        return Err(QueryError::BadData(
            "vector selector must contain at least one non-empty matcher".into(),
        ));
    }
    Ok(groups)
}

fn convert_matcher(m: &Matcher) -> LabelMatcher {
    // promql-parser has already anchored and compiled regexes the Prometheus way.
    let kind = match &m.op {
        MatchOp::Equal => MatchKind::Equal(m.value.clone()),
        MatchOp::NotEqual => MatchKind::NotEqual(m.value.clone()),
        MatchOp::Re(r) => MatchKind::Regex(r.clone()),
        MatchOp::NotRe(r) => MatchKind::NotRegex(r.clone()),
    };
    LabelMatcher {
        name: m.name.clone(),
        kind,
    }
}

/// Prometheus refuses vectors whose elements share a label set (e.g. after dropping names).
pub fn ensure_unique(v: &[Element]) -> Result<(), QueryError> {
    let mut seen = HashSet::with_capacity(v.len());
    for e in v {
        if !seen.insert(&e.labels) {
            return Err(QueryError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Applies an arithmetic or comparison operator. Comparisons return the left value and whether
/// the comparison held, mirroring how Prometheus filters.
fn scalar_op(op: u16, l: f64, r: f64) -> Result<(f64, bool), QueryError> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_MOD => (l % r, true),
        T_POW => (l.powf(r), true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        other => {
            return Err(QueryError::Unsupported(format!(
                "binary operator with token id {other}"
            )));
        }
    })
}

fn vector_scalar(
    op: u16,
    v: Vec<Element>,
    s: f64,
    scalar_on_left: bool,
    return_bool: bool,
) -> Result<Vec<Element>, QueryError> {
    let cmp = is_comparison(op);
    let mut out = Vec::with_capacity(v.len());
    for e in v {
        let (l, r) = if scalar_on_left {
            (s, e.value)
        } else {
            (e.value, s)
        };
        let (mut value, mut keep) = scalar_op(op, l, r)?;
        if cmp && scalar_on_left {
            // A filter keeps the vector element's own value even when the scalar is on the left.
            value = e.value;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            let labels = if !cmp || return_bool {
                drop_name(e.labels)
            } else {
                e.labels
            };
            out.push(Element { labels, value });
        }
    }
    ensure_unique(&out)?;
    Ok(out)
}

/// The label values two elements must share to match: `on(...)` lists them, otherwise all
/// labels except `ignoring(...)` ones and the metric name.
fn signature(labels: &Labels, matching: Option<&LabelModifier>) -> Vec<(String, String)> {
    match matching {
        Some(LabelModifier::Include(on)) => labels
            .iter()
            .filter(|(k, _)| on.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(ign)) => labels
            .iter()
            .filter(|(k, _)| k.as_str() != METRIC_NAME && !ign.labels.iter().any(|l| l == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => labels
            .iter()
            .filter(|(k, _)| k.as_str() != METRIC_NAME)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn set_and(l: Vec<Element>, r: Vec<Element>, m: Option<&LabelModifier>) -> Vec<Element> {
    let right: HashSet<_> = r.iter().map(|e| signature(&e.labels, m)).collect();
    l.into_iter()
        .filter(|e| right.contains(&signature(&e.labels, m)))
        .collect()
}

fn set_or(l: Vec<Element>, r: Vec<Element>, m: Option<&LabelModifier>) -> Vec<Element> {
    let left: HashSet<_> = l.iter().map(|e| signature(&e.labels, m)).collect();
    let mut out = l;
    out.extend(
        r.into_iter()
            .filter(|e| !left.contains(&signature(&e.labels, m))),
    );
    out
}

fn set_unless(l: Vec<Element>, r: Vec<Element>, m: Option<&LabelModifier>) -> Vec<Element> {
    let right: HashSet<_> = r.iter().map(|e| signature(&e.labels, m)).collect();
    l.into_iter()
        .filter(|e| !right.contains(&signature(&e.labels, m)))
        .collect()
}

fn describe(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn vector_vector(
    op: u16,
    lhs: Vec<Element>,
    rhs: Vec<Element>,
    matching: Option<&LabelModifier>,
    card: &VectorMatchCardinality,
    return_bool: bool,
) -> Result<Vec<Element>, QueryError> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let cmp = is_comparison(op);
    // For group_right the right side is the "many" side; swap so the loop below always walks
    // the many side, and swap operands back before applying the operator.
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut one_by_sig: HashMap<Vec<(String, String)>, Element> = HashMap::new();
    for e in one {
        let sig = signature(&e.labels, matching);
        if let Some(prev) = one_by_sig.get(&sig) {
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                describe(&sig.iter().cloned().collect()),
                if one_to_many { "left" } else { "right" },
                describe(&prev.labels),
                describe(&e.labels)
            )));
        }
        one_by_sig.insert(sig, e);
    }
    let include: &[String] = match card {
        VectorMatchCardinality::ManyToOne(ls) | VectorMatchCardinality::OneToMany(ls) => &ls.labels,
        _ => &[],
    };
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let mut matched: HashMap<Vec<(String, String)>, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for m in many {
        let sig = signature(&m.labels, matching);
        let Some(o) = one_by_sig.get(&sig) else {
            continue;
        };
        let (l, r) = if one_to_many {
            (o.value, m.value)
        } else {
            (m.value, o.value)
        };
        let (mut value, mut keep) = scalar_op(op, l, r)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if !keep {
            continue;
        }
        let labels = result_labels(
            &m.labels,
            &o.labels,
            cmp && !return_bool,
            matching,
            card,
            include,
        );
        let entry = matched.entry(sig);
        match entry {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                if one_to_one {
                    return Err(QueryError::Execution(format!(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right); conflicting series include {}",
                        describe(&m.labels)
                    )));
                }
                if !e.get_mut().insert(labels.clone()) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                let mut set = HashSet::new();
                set.insert(labels.clone());
                e.insert(set);
            }
        }
        out.push(Element { labels, value });
    }
    ensure_unique(&out)?;
    Ok(out)
}

/// Labels of a vector/vector result, following Prometheus's `resultMetric`.
fn result_labels(
    many: &Labels,
    one: &Labels,
    keep_name: bool,
    matching: Option<&LabelModifier>,
    card: &VectorMatchCardinality,
    include: &[String],
) -> Labels {
    let mut out = many.clone();
    if !keep_name {
        out.remove(METRIC_NAME);
    }
    if matches!(card, VectorMatchCardinality::OneToOne) {
        match matching {
            Some(LabelModifier::Include(on)) => out.retain(|k, _| on.labels.iter().any(|l| l == k)),
            Some(LabelModifier::Exclude(ign)) => {
                out.retain(|k, _| !ign.labels.iter().any(|l| l == k))
            }
            None => {}
        }
    }
    for name in include {
        match one.get(name) {
            Some(v) if !v.is_empty() => {
                out.insert(name.clone(), v.clone());
            }
            _ => {
                out.remove(name);
            }
        }
    }
    out
}
