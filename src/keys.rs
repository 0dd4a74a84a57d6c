//! `supakeys keys list`: the lifecycle of every key, read from the store as it is.

use crate::config::LegacyHs256;
use crate::error::{Error, Result};
use crate::render::FILES;
use crate::state;
use crate::store::Store;
use serde_json::{Value, json};
use std::io::Write;

fn exp_of(token: &str) -> Option<i64> {
    let exp = crate::jwt::parse(token)
        .ok()?
        .payload
        .get("exp")?
        .as_f64()?;
    (0.0..=crate::clock::MAX_TIME as f64)
        .contains(&exp)
        .then_some(exp as i64)
}

/// `supakeys keys list [--format table|json]`.
pub fn list(store: &dyn Store, json: bool) -> Result<()> {
    let state = store.state()?.ok_or(Error::NoState {
        path: store.path_of(state::FILE),
    })?;
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    for (name, _) in FILES {
        if name != state::FILE
            && let Some(bytes) = store.read(name)?
        {
            files.push((name, bytes));
        }
    }
    let contains =
        |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    let carried_by = |kid: &str| -> Vec<&str> {
        let needle = format!("\"kid\":\"{kid}\"");
        files
            .iter()
            .filter(|(_, b)| contains(b, &needle))
            .map(|(n, _)| *n)
            .collect()
    };
    let keys: Vec<Value> = state
        .keys
        .iter()
        .map(|k| {
            json!({
                "kid": k.kid.as_str(),
                "alg": k.alg.as_str(),
                "status": k.status.as_str(),
                "created_at": crate::clock::date(k.created_at),
                "changed_at": crate::clock::date(k.changed_at),
                "files": carried_by(k.kid.as_str()),
            })
        })
        .collect();
    let env = files
        .iter()
        .find(|(n, _)| *n == "supabase.env")
        .and_then(|(_, b)| crate::envfile::DotEnv::parse(&String::from_utf8_lossy(b)).ok());
    let token_exp = |name: &str| env.as_ref().and_then(|e| e.get(name)).and_then(exp_of);
    let anon_exp = token_exp("ANON_KEY_ASYMMETRIC");
    // The tokens are the minted ones when they carry the state's exp; legacy keys re-signed
    // keep their own exp and are never renewed by supakeys.
    let minted = anon_exp == Some(state.minted.exp);
    let now = crate::clock::now();
    // As `init` decides (`state::Minted::renewal`): due, expired, or issued in the future.
    let renewal_due = minted
        && (now >= state.minted.renew_from()
            || state.minted.iat > now + crate::jwt::IAT_LEEWAY_SECS);
    let report = json!({
        "keys": keys,
        "legacy_hs256": match state.legacy_hs256.mode {
            LegacyHs256::Accept => "accepted",
            LegacyHs256::Reject => "rejected",
        },
        "legacy_hs256_since": state.legacy_hs256.changed_at.map(crate::clock::date),
        "api_tokens": {
            "anon_expires": anon_exp.map(crate::clock::date),
            "service_role_expires": token_exp("SERVICE_ROLE_KEY_ASYMMETRIC").map(crate::clock::date),
            "source": match (anon_exp, minted) {
                (None, _) => "unknown",
                (_, true) => "minted",
                (_, false) => "legacy keys re-signed",
            },
            "renew_from": minted.then(|| crate::clock::date(state.minted.renew_from())),
            "renewal_due": renewal_due,
        },
    });
    let text = if json {
        format!("{report:#}\n")
    } else {
        let mut out = format!(
            "{:<38} {:<6} {:<9} {:<21} {:<21} FILES\n",
            "KID", "ALG", "STATUS", "CREATED", "CHANGED"
        );
        for k in report["keys"].as_array().into_iter().flatten() {
            let files: Vec<_> = k["files"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            out.push_str(&format!(
                "{:<38} {:<6} {:<9} {:<21} {:<21} {}\n",
                k["kid"].as_str().unwrap_or_default(),
                k["alg"].as_str().unwrap_or_default(),
                k["status"].as_str().unwrap_or_default(),
                k["created_at"].as_str().unwrap_or_default(),
                k["changed_at"].as_str().unwrap_or_default(),
                if files.is_empty() {
                    "-".to_owned()
                } else {
                    files.join(",")
                },
            ));
        }
        let renewal = if anon_exp.is_none() {
            "supabase.env is missing or has no token: run `supakeys init`".to_owned()
        } else if !minted {
            "legacy keys re-signed: they keep their own exp".to_owned()
        } else if renewal_due {
            "renewal due: the next `supakeys init` renews them".to_owned()
        } else {
            format!(
                "minted: `supakeys init` renews them from {}",
                crate::clock::date(state.minted.renew_from())
            )
        };
        out.push_str(&format!(
            "legacy HS256: {} {}\nAPI tokens: anon expires {}, service_role expires {} ({renewal})\n",
            report["legacy_hs256"].as_str().unwrap_or_default(),
            state::since(state.legacy_hs256.changed_at),
            report["api_tokens"]["anon_expires"].as_str().unwrap_or("?"),
            report["api_tokens"]["service_role_expires"]
                .as_str()
                .unwrap_or("?"),
        ));
        out
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| Error::Output { source })
}
