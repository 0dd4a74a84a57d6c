//! The doctor's report: one line per service and check, as text for people or JSON for
//! scripts. Pure: the same lines give the same bytes (tests pin them).
//!
//! Nothing here holds a secret: lines carry service names, kids, algorithms, statuses and
//! what the services said (already redacted by the analysis).
//!
//! Lines quote what services answered: every text field is escaped as it is rendered, in
//! text and JSON alike, so no answer can put a control character on the terminal or forge
//! a line of the report.

use crate::escape::text as esc;
use serde_json::{Value, json};

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The deployment matches the keys; `detail` says what was seen.
    Pass { detail: String },
    /// It does not: what was seen, the likely cause, and what to do.
    Fail {
        problem: String,
        cause: String,
        fix: String,
    },
    /// The check could not run; `reason` says exactly what is missing.
    Skip { reason: String },
}

/// One service and one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The compose service name (`auth`, `api-gw`, `rest`, `storage`, `realtime`).
    pub service: &'static str,
    /// A stable identifier of the check, for scripts (`jwks`, `accepts-key`, …).
    pub check: &'static str,
    /// The key the check is about, with its status in `state.json`.
    pub key: Option<(String, &'static str)>,
    /// What is checked, as a sentence without the service name.
    pub title: String,
    pub outcome: Outcome,
}

impl Line {
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }
}

/// Everything the report shows besides the lines.
pub struct Header<'a> {
    pub url: &'a str,
    pub gateway: Option<&'a str>,
    pub dir: &'a str,
    /// kid, alg, status of every key of `state.json`.
    pub keys: &'a [(String, &'static str, &'static str)],
    pub legacy_hs256: &'a str,
    pub elapsed_ms: u128,
}

fn counts(lines: &[Line]) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for line in lines {
        match line.outcome {
            Outcome::Pass { .. } => c.0 += 1,
            Outcome::Fail { .. } => c.1 += 1,
            Outcome::Skip { .. } => c.2 += 1,
        }
    }
    c
}

/// The report for people.
pub fn text(header: &Header<'_>, lines: &[Line]) -> String {
    let mut out = format!(
        "supakeys doctor: {}{}, keys in {}\n",
        esc(header.url),
        header
            .gateway
            .map(|g| format!(" (gateway: {g})"))
            .unwrap_or_default(),
        esc(header.dir)
    );
    let keys: Vec<String> = header
        .keys
        .iter()
        .map(|(kid, alg, status)| format!("{status} {} ({alg})", esc(kid)))
        .collect();
    out.push_str(&format!(
        "keys: {}; legacy HS256 {}\n\n",
        keys.join(", "),
        header.legacy_hs256
    ));
    const INDENT: &str = "              ";
    // A gateway that is down fails every line the same way: say it once.
    let mut previous: Option<(&str, &str)> = None;
    for line in lines {
        let mark = match line.outcome {
            Outcome::Pass { .. } => "✓",
            Outcome::Fail { .. } => "✗",
            Outcome::Skip { .. } => "–",
        };
        out.push_str(&format!(
            "{mark} {:<10}  {}",
            line.service,
            esc(&line.title)
        ));
        match &line.outcome {
            Outcome::Pass { detail } if detail.is_empty() => out.push('\n'),
            Outcome::Pass { detail } => out.push_str(&format!(": {}\n", esc(detail))),
            Outcome::Skip { reason } => {
                out.push_str(&format!(": not checked: {}\n", esc(reason)));
            }
            Outcome::Fail {
                problem,
                cause,
                fix,
            } => {
                let (problem, cause_text, fix_text) = (esc(problem), esc(cause), esc(fix));
                if previous == Some((cause.as_str(), fix.as_str())) {
                    out.push_str(&format!("\n{INDENT}{problem}: cause and fix as above\n"));
                } else {
                    out.push_str(&format!(
                        "\n{INDENT}{problem}\n{INDENT}cause: {cause_text}\n{INDENT}fix: {fix_text}\n"
                    ));
                }
                previous = Some((cause, fix));
            }
        }
    }
    let (passed, failed, skipped) = counts(lines);
    let seconds = header.elapsed_ms as f64 / 1000.0;
    out.push_str(&format!(
        "\n{passed} passed, {failed} failed, {skipped} not checked ({seconds:.2} s): {}\n",
        if failed == 0 {
            "the running services use the keys"
        } else {
            "the deployment does not match the keys"
        }
    ));
    out
}

/// The report for scripts (one JSON document).
pub fn json(header: &Header<'_>, lines: &[Line]) -> Value {
    let checks: Vec<Value> = lines
        .iter()
        .map(|line| {
            let mut check = json!({
                "service": line.service,
                "check": line.check,
                "title": esc(&line.title),
            });
            if let Some((kid, status)) = &line.key {
                check["kid"] = json!(esc(kid));
                check["key_status"] = json!(status);
            }
            match &line.outcome {
                Outcome::Pass { detail } => {
                    check["result"] = json!("pass");
                    check["detail"] = json!(esc(detail));
                }
                Outcome::Fail {
                    problem,
                    cause,
                    fix,
                } => {
                    check["result"] = json!("fail");
                    check["problem"] = json!(esc(problem));
                    check["cause"] = json!(esc(cause));
                    check["fix"] = json!(esc(fix));
                }
                Outcome::Skip { reason } => {
                    check["result"] = json!("skip");
                    check["reason"] = json!(esc(reason));
                }
            }
            check
        })
        .collect();
    let (passed, failed, skipped) = counts(lines);
    json!({
        "url": esc(header.url),
        "gateway": header.gateway,
        "dir": esc(header.dir),
        "keys": header.keys.iter().map(|(kid, alg, status)| json!({"kid": esc(kid), "alg": alg, "status": status})).collect::<Vec<_>>(),
        "legacy_hs256": header.legacy_hs256,
        "checks": checks,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "elapsed_ms": header.elapsed_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<(String, &'static str, &'static str)>, Vec<Line>) {
        let keys = vec![
            ("k-new".to_owned(), "ES256", "current"),
            ("k-old".to_owned(), "ES256", "previous"),
        ];
        let lines = vec![
            Line {
                service: "auth",
                check: "jwks",
                key: None,
                title: "serves the JWKS of state.json without an apikey".into(),
                outcome: Outcome::Pass {
                    detail: "k-new (current), k-old (previous)".into(),
                },
            },
            Line {
                service: "auth",
                check: "signing-key",
                key: None,
                title: "signs with the current key".into(),
                outcome: Outcome::Skip {
                    reason: "pass --access-token".into(),
                },
            },
            Line {
                service: "storage",
                check: "accepts-key",
                key: Some(("k-old".into(), "previous")),
                title: "accepts a token signed by the previous key k-old (ES256)".into(),
                outcome: Outcome::Fail {
                    problem: "storage refused it".into(),
                    cause: "it did not load /keys/storage.env".into(),
                    fix: "docker compose restart storage".into(),
                },
            },
            Line {
                service: "realtime",
                check: "accepts-key",
                key: Some(("k-old".into(), "previous")),
                title: "accepts a token signed by the previous key k-old (ES256)".into(),
                outcome: Outcome::Fail {
                    problem: "realtime refused it".into(),
                    cause: "it did not load /keys/storage.env".into(),
                    fix: "docker compose restart storage".into(),
                },
            },
        ];
        (keys, lines)
    }

    #[test]
    fn text_report() {
        let (keys, lines) = sample();
        let header = Header {
            url: "http://api-gw:8000",
            gateway: Some("envoy"),
            dir: "/keys",
            keys: &keys,
            legacy_hs256: "accepted",
            elapsed_ms: 1234,
        };
        assert_eq!(
            text(&header, &lines),
            "supakeys doctor: http://api-gw:8000 (gateway: envoy), keys in /keys\n\
             keys: current k-new (ES256), previous k-old (ES256); legacy HS256 accepted\n\
             \n\
             ✓ auth        serves the JWKS of state.json without an apikey: k-new (current), k-old (previous)\n\
             – auth        signs with the current key: not checked: pass --access-token\n\
             ✗ storage     accepts a token signed by the previous key k-old (ES256)\n\
             \x20             storage refused it\n\
             \x20             cause: it did not load /keys/storage.env\n\
             \x20             fix: docker compose restart storage\n\
             ✗ realtime    accepts a token signed by the previous key k-old (ES256)\n\
             \x20             realtime refused it: cause and fix as above\n\
             \n\
             1 passed, 2 failed, 1 not checked (1.23 s): the deployment does not match the keys\n"
        );
    }

    #[test]
    fn json_report() {
        let (keys, lines) = sample();
        let header = Header {
            url: "http://kong:8000",
            gateway: None,
            dir: "/keys",
            keys: &keys,
            legacy_hs256: "rejected",
            elapsed_ms: 7,
        };
        let v = json(&header, &lines);
        assert_eq!(
            (&v["passed"], &v["failed"], &v["skipped"]),
            (&json!(1), &json!(2), &json!(1))
        );
        assert_eq!(v["gateway"], Value::Null);
        assert_eq!(
            v["keys"][1],
            json!({"kid":"k-old","alg":"ES256","status":"previous"})
        );
        assert_eq!(
            v["checks"][2],
            json!({
                "service": "storage",
                "check": "accepts-key",
                "title": "accepts a token signed by the previous key k-old (ES256)",
                "kid": "k-old",
                "key_status": "previous",
                "result": "fail",
                "problem": "storage refused it",
                "cause": "it did not load /keys/storage.env",
                "fix": "docker compose restart storage",
            })
        );
        assert_eq!(v["checks"][1]["result"], "skip");
    }
}
