//! Parse errors as Prometheus reports them: `line:col: parse error: message`, with the position
//! of the offending character, token or expression and Prometheus's wording.
//!
//! promql-parser's messages carry no position and its generated parser is private, so errors are
//! located from outside by re-parsing parts of the query: the lexer stops at its first bad
//! character, a syntax error is the last token of the smallest part that fails the same way, and a
//! type error belongs to an operand or argument of the smallest part that fails the same way.
//! Only the error path pays for this; a query that parses never comes here.

use lrpar::{Lexeme as _, Lexer as _};
use promql_parser::parser::token::{
    T_DURATION, T_IDENTIFIER, T_METRIC_IDENTIFIER, T_NUMBER, T_STRING, TokenId, TokenType,
};
use promql_parser::parser::value::ValueType;

use super::value::QueryError;

/// Queries with more tokens than this get no position: locating is quadratic in tokens.
const MAX_TOKENS_TO_LOCATE: usize = 160;

/// promql-parser's message for every syntax error the grammar finds.
const INVALID_QUERY: &str = "invalid promql query";

/// A parse error as Prometheus words it, with the position when it can be found.
pub(super) fn parse_error(query: &str, msg: &str) -> QueryError {
    let (offset, msg) = if msg == INVALID_QUERY {
        // The grammar's own errors all read "invalid promql query"; find and name the token.
        match syntax_error(query) {
            Some((offset, msg)) => (Some(offset), msg),
            None => (None, msg.to_string()),
        }
    } else {
        let offset = lexer_error_offset(query, msg).or_else(|| grammar_error_offset(query, msg));
        (offset, prometheus_wording(msg))
    };
    match offset {
        Some(offset) => {
            let (line, col) = line_col(query, offset);
            QueryError::Parse(format!("{line}:{col}: parse error: {msg}"))
        }
        None => QueryError::Parse(format!("parse error: {msg}")),
    }
}

/// Prometheus's 1-based line and column of a byte offset (columns count bytes).
fn line_col(query: &str, offset: usize) -> (usize, usize) {
    let before = query.get(..offset).unwrap_or(query);
    let line = 1 + before.matches('\n').count();
    let col = match before.rfind('\n') {
        Some(nl) => offset - nl,
        None => offset + 1,
    };
    (line, col)
}

/// The lexer's error for `text`, or `None` if it lexes (or the lexer panics).
fn lexer_error(text: &str) -> Option<String> {
    match crate::panics::caught(|| promql_parser::parser::lex::lexer(text).map(|_| ())) {
        Ok(Err(e)) => Some(e),
        Ok(Ok(())) | Err(_) => None,
    }
}

/// Byte offset where the lexer failed with `msg`, if the lexer is what failed.
fn lexer_error_offset(query: &str, msg: &str) -> Option<usize> {
    if lexer_error(query).as_deref() != Some(msg) || query.trim().is_empty() {
        return None;
    }
    const AT_END: [&str; 5] = [
        "unclosed",
        "end of input",
        "can not be at the end",
        "not terminated",
        "too many left parentheses",
    ];
    if AT_END.iter().any(|m| msg.contains(m)) {
        return Some(query.len());
    }
    // Prefix ends at character boundaries; failing with `msg` is monotone in the prefix length
    // because the lexer stops at its first error. Binary search for the shortest such prefix.
    let ends: Vec<usize> = query
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .collect();
    let first = ends.partition_point(|&end| lexer_error(&query[..end]).as_deref() != Some(msg));
    let end = *ends.get(first)?;
    // The offending character is the prefix's last one.
    query[..end].char_indices().last().map(|(i, _)| i)
}

/// One token of the query: its byte span and promql-parser's token id.
#[derive(Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    id: TokenId,
}

/// The query's tokens, or `None` when it does not lex.
fn tokens(query: &str) -> Option<Vec<Token>> {
    let tokens = crate::panics::caught(|| {
        let lexer = promql_parser::parser::lex::lexer(query).ok()?;
        lexer
            .iter()
            .map(|l| {
                l.ok().map(|l| Token {
                    start: l.span().start(),
                    end: l.span().end(),
                    id: l.tok_id(),
                })
            })
            .collect::<Option<Vec<_>>>()
    });
    let tokens = tokens.ok()??;
    Some(tokens.into_iter().filter(|t| t.end > t.start).collect())
}

/// What parsing `text` gives: its value type, or the error message (`None` if the parser panics).
fn parse_outcome(text: &str) -> Result<ValueType, Option<String>> {
    match crate::panics::caught(|| promql_parser::parser::parse(text)) {
        Ok(Ok(expr)) => Ok(expr.value_type()),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

fn fails_with(text: &str, msg: &str) -> bool {
    matches!(parse_outcome(text), Err(Some(m)) if m == msg)
}

fn has_type(text: &str, wanted: impl Fn(ValueType) -> bool) -> bool {
    parse_outcome(text).is_ok_and(wanted)
}

/// Where a syntax error is, and Prometheus's message for it: `unexpected <token>` at the first
/// token after which no continuation can parse, or `unexpected end of input` past the end.
///
/// A prefix is judged to continue when it parses (or fails only a type check) after one of a
/// few typical continuations and the closing brackets it needs. Judging a viable prefix
/// otherwise would point too early, so the continuations cover every place an expression,
/// label, duration or grouping can be missing.
fn syntax_error(query: &str) -> Option<(usize, String)> {
    let tokens = tokens(query)?;
    if tokens.len() > MAX_TOKENS_TO_LOCATE {
        return None;
    }
    for t in &tokens {
        if !continues(&query[..t.end]) {
            return Some((t.start, format!("unexpected {}", describe(query, t))));
        }
    }
    Some((query.len(), "unexpected end of input".to_string()))
}

/// Whether some continuation of `prefix` parses.
fn continues(prefix: &str) -> bool {
    const CONTINUATIONS: [&str; 16] = [
        "", " x", " 1", "=\"x\"", " =\"x\"", "\"x\"", " a=\"x\"", " (x)", " (a) (x)", " a) (x",
        ") (x", " 5m", "m", ":]", " 1, x", " (a) x",
    ];
    CONTINUATIONS.iter().any(|more| {
        let mut text = format!("{prefix}{more}");
        text.push_str(&closers(&text));
        match parse_outcome(&text) {
            Ok(_) => true,
            // A message other than the grammar's own means the syntax was fine.
            Err(Some(m)) => m != INVALID_QUERY && lexer_error(&text).is_none(),
            Err(None) => false,
        }
    })
}

/// The closing brackets `text` lacks, innermost first (quoted strings skipped).
fn closers(text: &str) -> String {
    let mut open = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q != '`' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' => open.push(')'),
                '[' => open.push(']'),
                '{' => open.push('}'),
                ')' | ']' | '}' => {
                    open.pop();
                }
                _ => {}
            },
        }
    }
    open.iter().rev().collect()
}

/// A token as Prometheus names it in `unexpected …`.
fn describe(query: &str, t: &Token) -> String {
    let text = &query[t.start..t.end];
    let kind = TokenType::new(t.id);
    match t.id {
        T_IDENTIFIER | T_METRIC_IDENTIFIER => format!("identifier {text:?}"),
        T_NUMBER => format!("number {text:?}"),
        T_STRING => format!("string {text:?}"),
        T_DURATION => format!("duration {text:?}"),
        _ if kind.is_aggregator() => format!("<aggr:{text}>"),
        _ if kind.is_operator() => format!("<op:{text}>"),
        _ if text.chars().all(|c| c.is_ascii_alphabetic() || c == '_') => format!("<{text}>"),
        _ => format!("{text:?}"),
    }
}

/// Byte offset of a grammar or type error, found by parsing token-aligned parts of the query.
fn grammar_error_offset(query: &str, msg: &str) -> Option<usize> {
    if msg.contains("end of input") {
        return Some(query.len());
    }
    let spans: Vec<(usize, usize)> = tokens(query)?.iter().map(|t| (t.start, t.end)).collect();
    if spans.is_empty() || spans.len() > MAX_TOKENS_TO_LOCATE {
        return None;
    }
    let text = |from: usize, to: usize| &query[spans[from].0..spans[to - 1].1];
    // The smallest run of tokens that fails with the same message: the expression whose check
    // failed (or, for a syntax error, the run ending at the unexpected token).
    let n = spans.len();
    let (from, to) = (1..=n)
        .flat_map(|len| (0..=n - len).map(move |from| (from, from + len)))
        .find(|&(from, to)| fails_with(text(from, to), msg))?;
    let start = |i: usize| spans[i].0;

    if msg.starts_with("binary expression must contain only scalar and") {
        let bad = |t: ValueType| !matches!(t, ValueType::Scalar | ValueType::Vector);
        // The left operand when it is the bad one, else the right operand.
        if (from + 1..to).any(|end| has_type(text(from, end), bad)) {
            return Some(start(from));
        }
        return (from + 1..to)
            .find(|&begin| has_type(text(begin, to), bad))
            .map(start)
            .or(Some(start(from)));
    }
    let Some(got) = got_type(msg) else {
        return Some(start(from));
    };
    if msg.starts_with("unary expression") {
        return Some(start(from));
    }
    // A type error in a call or aggregation: the argument (a token run between `(` or `,` and
    // `,` or `)`) of the type the message names. An aggregation's expression is its last
    // argument; parameters and function arguments are checked first to last.
    let is = |i: usize, tokens: &[&str]| tokens.contains(&&query[spans[i].0..spans[i].1]);
    let arguments = (from + 1..to).flat_map(|begin| (begin + 1..to).map(move |end| (begin, end)));
    let mut matching = arguments.filter(|&(begin, end)| {
        is(begin - 1, &["(", ","])
            && is(end, &[")", ","])
            && has_type(text(begin, end), |t| t == got)
    });
    let argument = if msg.contains("in aggregation expression") {
        matching.next_back()
    } else {
        matching.next()
    };
    Some(argument.map_or(start(from), |(begin, _)| start(begin)))
}

/// The type after `got` in promql-parser's type errors.
fn got_type(msg: &str) -> Option<ValueType> {
    let (_, got) = msg.rsplit_once("got ")?;
    match got.trim_matches('"') {
        "vector" => Some(ValueType::Vector),
        "matrix" => Some(ValueType::Matrix),
        "scalar" => Some(ValueType::Scalar),
        "string" => Some(ValueType::String),
        _ => None,
    }
}

/// promql-parser's messages in the words Prometheus uses for the same errors: `instant vector`
/// and `range vector` for its `vector` and `matrix`, and function names in double quotes.
fn prometheus_wording(msg: &str) -> String {
    let type_name = |t: &str| match t {
        "vector" => "instant vector".to_string(),
        "matrix" => "range vector".to_string(),
        other => other.to_string(),
    };
    if let Some(rest) = msg.strip_prefix("expected type ")
        && let Some((expected, rest)) = rest.split_once(" in ")
        && let Some((context, got)) = rest.rsplit_once(", got ")
    {
        return format!(
            "expected type {} in {}, got {}",
            type_name(expected),
            context.replace('\'', "\""),
            type_name(got)
        );
    }
    if let Some(got) = msg.strip_prefix(
        "unary expression only allowed on expressions of type scalar or vector, got: ",
    ) {
        return format!(
            "unary expression only allowed on expressions of type scalar or instant vector, got \"{}\"",
            type_name(got.trim_matches('"'))
        );
    }
    if msg.contains("argument(s) in call to '") {
        return msg.replace('\'', "\"");
    }
    msg.to_string()
}
