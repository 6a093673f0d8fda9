//! The subset of JQL the Jira simulator understands: `AND`, parentheses, `project`/`key`/
//! `labels`/`status` with `=`, `!=` and `in (…)`, `updated`/`created` compared with epoch
//! milliseconds (exact) or date literals (minute precision, in the user's time zone), and
//! `ORDER BY`.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '"' | '\'' => {
                let q = c;
                let mut j = i + 1;
                let mut v = String::new();
                while j < chars.len() && chars[j] != q {
                    // JQL escapes quotes and backslashes inside strings with a backslash.
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        j += 1;
                    }
                    v.push(chars[j]);
                    j += 1;
                }
                if j >= chars.len() {
                    return Err("unterminated string".into());
                }
                out.push(Tok::Str(v));
                i = j + 1;
            }
            '=' | '!' | '<' | '>' | '~' => {
                let mut op = c.to_string();
                if i + 1 < chars.len() && chars[i + 1] == '=' {
                    op.push('=');
                    i += 1;
                }
                out.push(Tok::Op(op));
                i += 1;
            }
            _ => {
                let mut j = i;
                let mut v = String::new();
                while j < chars.len()
                    && !chars[j].is_whitespace()
                    && !"()=,!<>~\"'".contains(chars[j])
                {
                    v.push(chars[j]);
                    j += 1;
                }
                out.push(Tok::Word(v));
                i = j;
            }
        }
    }
    Ok(out)
}

/// What a clause compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Id,
    Project,
    Key,
    Labels,
    Status,
    Updated,
    Created,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    In {
        field: Field,
        values: Vec<String>,
        negate: bool,
    },
    Time {
        field: Field,
        op: String,
        at: DateTime<Utc>,
    },
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Expr,
    /// (field, ascending)
    pub order: Vec<(String, bool)>,
}

/// The values a clause can test on an issue.
pub trait Subject {
    fn id(&self) -> &str;
    fn project(&self) -> &str;
    fn key(&self) -> &str;
    fn labels(&self) -> &[String];
    fn status(&self) -> &str;
    fn updated(&self) -> DateTime<Utc>;
    fn created(&self) -> DateTime<Utc>;
}

impl Expr {
    pub fn matches(&self, s: &dyn Subject) -> bool {
        match self {
            Expr::All => true,
            Expr::And(list) => list.iter().all(|e| e.matches(s)),
            Expr::In {
                field,
                values,
                negate,
            } => {
                let hit = match field {
                    Field::Id => values.iter().any(|v| v == s.id()),
                    Field::Project => values.iter().any(|v| v.eq_ignore_ascii_case(s.project())),
                    Field::Key => values.iter().any(|v| v.eq_ignore_ascii_case(s.key())),
                    Field::Status => values.iter().any(|v| v.eq_ignore_ascii_case(s.status())),
                    Field::Labels => s.labels().iter().any(|l| values.contains(l)),
                    Field::Updated | Field::Created => false,
                };
                hit != *negate
            }
            Expr::Time { field, op, at } => {
                let t = if *field == Field::Updated {
                    s.updated()
                } else {
                    s.created()
                };
                match op.as_str() {
                    ">=" => t >= *at,
                    ">" => t > *at,
                    "<=" => t <= *at,
                    "<" => t < *at,
                    "=" => t == *at,
                    _ => false,
                }
            }
        }
    }
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    tz_minutes: i32,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut terms = vec![self.term()?];
        while self.is_word("AND") {
            self.pos += 1;
            terms.push(self.term()?);
        }
        if self.is_word("OR") {
            return Err("OR is not supported by the simulator".into());
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn term(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.expr()?;
            if self.next() != Some(Tok::RParen) {
                return Err("expected ')'".into());
            }
            return Ok(e);
        }
        let field = match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) => w,
            other => return Err(format!("expected a field name, found {other:?}")),
        };
        let field = match field.to_ascii_lowercase().as_str() {
            "id" => Field::Id,
            "project" => Field::Project,
            "key" | "issuekey" => Field::Key,
            "labels" => Field::Labels,
            "status" => Field::Status,
            "updated" | "updateddate" => Field::Updated,
            "created" | "createddate" => Field::Created,
            other => return Err(format!("Field '{other}' is not supported by the simulator")),
        };
        match self.next() {
            Some(Tok::Op(op)) => {
                let value = self.value()?;
                match field {
                    Field::Updated | Field::Created => Ok(Expr::Time {
                        field,
                        op: op.clone(),
                        at: self.time(&value)?,
                    }),
                    _ if op == "=" || op == "!=" => Ok(Expr::In {
                        field,
                        values: vec![value],
                        negate: op == "!=",
                    }),
                    _ => Err(format!("operator {op} is not supported for this field")),
                }
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") || w.eq_ignore_ascii_case("not") => {
                let negate = w.eq_ignore_ascii_case("not");
                if negate
                    && !matches!(self.next(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case("in"))
                {
                    return Err("expected IN after NOT".into());
                }
                if self.next() != Some(Tok::LParen) {
                    return Err("expected '(' after IN".into());
                }
                let mut values = vec![self.value()?];
                loop {
                    match self.next() {
                        Some(Tok::Comma) => values.push(self.value()?),
                        Some(Tok::RParen) => break,
                        other => return Err(format!("expected ',' or ')', found {other:?}")),
                    }
                }
                Ok(Expr::In {
                    field,
                    values,
                    negate,
                })
            }
            other => Err(format!("expected an operator, found {other:?}")),
        }
    }

    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) => Ok(w),
            other => Err(format!("expected a value, found {other:?}")),
        }
    }

    /// Epoch milliseconds are exact; date literals have minute precision and are read in
    /// the user's time zone, as Jira does.
    fn time(&self, v: &str) -> Result<DateTime<Utc>, String> {
        if let Ok(ms) = v.parse::<i64>() {
            return Utc
                .timestamp_millis_opt(ms)
                .single()
                .ok_or_else(|| format!("bad timestamp {v}"));
        }
        let local = ["%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
            .or_else(|| {
                ["%Y/%m/%d", "%Y-%m-%d"]
                    .iter()
                    .find_map(|f| NaiveDate::parse_from_str(v, f).ok())
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
            .ok_or_else(|| format!("Date value '{v}' for field 'updated' is invalid"))?;
        Ok(local.and_utc() - Duration::minutes(self.tz_minutes as i64))
    }
}

/// Parses a JQL query of the supported subset.
pub fn parse(jql: &str, tz_minutes: i32) -> Result<Query, String> {
    let toks = tokenize(jql)?;
    // Split off ORDER BY.
    let order_at = toks.windows(2).position(|w| {
        matches!((&w[0], &w[1]), (Tok::Word(a), Tok::Word(b)) if a.eq_ignore_ascii_case("order") && b.eq_ignore_ascii_case("by"))
    });
    let (filter_toks, order_toks) = match order_at {
        Some(i) => (&toks[..i], &toks[i + 2..]),
        None => (&toks[..], &toks[toks.len()..]),
    };
    let filter = if filter_toks.is_empty() {
        Expr::All
    } else {
        let mut p = Parser {
            toks: filter_toks,
            pos: 0,
            tz_minutes,
        };
        let e = p.expr()?;
        if p.pos != filter_toks.len() {
            return Err(format!("unexpected {:?}", filter_toks[p.pos]));
        }
        e
    };
    let mut order = Vec::new();
    let mut i = 0;
    while i < order_toks.len() {
        let Tok::Word(field) = &order_toks[i] else {
            return Err("expected a field after ORDER BY".into());
        };
        let field = field.to_ascii_lowercase();
        if !["updated", "created", "key"].contains(&field.as_str()) {
            return Err(format!("cannot order by {field} in the simulator"));
        }
        i += 1;
        let mut asc = true;
        if let Some(Tok::Word(d)) = order_toks.get(i) {
            if d.eq_ignore_ascii_case("desc") {
                asc = false;
                i += 1;
            } else if d.eq_ignore_ascii_case("asc") {
                i += 1;
            }
        }
        order.push((field, asc));
        match order_toks.get(i) {
            Some(Tok::Comma) => i += 1,
            None => {}
            Some(t) => return Err(format!("unexpected {t:?} in ORDER BY")),
        }
    }
    Ok(Query { filter, order })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        let q = parse("(project in (PAY, \"WEB\")) AND updated >= 1762164930000 ORDER BY updated ASC, key DESC", 0).expect("parse");
        assert_eq!(
            q.order,
            vec![("updated".to_string(), true), ("key".to_string(), false)]
        );
        let Expr::And(parts) = q.filter else {
            panic!("and")
        };
        assert_eq!(parts.len(), 2);
        assert!(parse("project = PAY OR project = WEB", 0).is_err());
        assert!(parse("assignee = me", 0).is_err());
        assert_eq!(parse("", 0).expect("empty").filter, Expr::All);
    }

    #[test]
    fn date_literals_have_minute_precision_in_the_user_zone() {
        let q = parse("updated >= \"2026/11/03 10:15\"", 60).expect("parse");
        let Expr::Time { at, .. } = q.filter else {
            panic!("time")
        };
        assert_eq!(at.to_rfc3339(), "2026-11-03T09:15:00+00:00");
    }
}
