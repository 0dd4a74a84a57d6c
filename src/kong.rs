//! Rendering Kong's declarative config from a template with `$NAME` placeholders.
//!
//! The template is parsed as YAML first and placeholders are replaced inside string
//! scalars, then the tree is emitted again: a value containing `'`, `: ` or a newline can
//! neither break the file nor inject YAML, unlike upstream's textual substitution.

use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use yaml_rust2::{Yaml, YamlLoader};

/// The largest kong.yml supakeys writes: placeholders (the Lua expressions are 1.5 KiB
/// each) can multiply a template's size; a template that renders to more is refused.
const MAX_RENDERED_BYTES: usize = 8 << 20;

const JWKS_PATH: &str = "/auth/v1/.well-known/jwks.json";
const OAUTH_PATH: &str = "/.well-known/oauth-authorization-server";

/// The placeholders supakeys fills in. Any other `$NAME` in a template is an error.
pub const PLACEHOLDERS: [&str; 12] = [
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_KEY",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "ANON_KEY_ASYMMETRIC",
    "SERVICE_ROLE_KEY_ASYMMETRIC",
    "DASHBOARD_USERNAME",
    "DASHBOARD_PASSWORD",
    "LUA_AUTH_EXPR",
    "LUA_RT_WS_EXPR",
    "LUA_FUNCTIONS_EXPR",
    "WELL_KNOWN_OAUTH_PATH",
];

/// Variables of Kong's own environment that a template may use next to supakeys'
/// placeholders (`SUPAKEYS_KONG_ENV`): Coolify's kong.yml takes Storage's timeouts from
/// `$KONG_STORAGE_CONNECT_TIMEOUT` and the like, which its Kong entrypoint filled in from
/// Kong's environment. supakeys fills them from its own; a name without a value is listed
/// but unset.
#[derive(Debug, Default)]
pub struct KongEnv {
    vars: BTreeMap<String, Option<String>>,
}

impl KongEnv {
    pub fn new(vars: BTreeMap<String, Option<String>>) -> KongEnv {
        KongEnv { vars }
    }

    /// `text` with every listed variable that has a value filled in, or `None` when it
    /// names none. One pass: a filled-in value is not searched for placeholders again.
    fn fill(&self, text: &str) -> Option<String> {
        let mut out = String::new();
        let mut last = 0;
        placeholders(text, |start, end| {
            if let Some(Some(value)) = self.vars.get(&text[start + 1..end]) {
                out.push_str(&text[last..start]);
                out.push_str(value);
                last = end;
            }
        });
        (last > 0).then(|| {
            out.push_str(&text[last..]);
            out
        })
    }
}

/// A parsed template whose placeholders are all known.
#[derive(Debug)]
pub struct Template {
    name: String,
    root: Yaml,
    used: BTreeSet<String>,
}

/// The values to fill in. All are final: which key goes where was decided by the caller.
pub struct Values<'a> {
    pub anon_key: &'a str,
    pub service_key: &'a str,
    pub publishable_key: &'a str,
    pub secret_key: &'a str,
    pub anon_asymmetric: &'a str,
    pub service_asymmetric: &'a str,
    /// Legacy keys Kong keeps accepting next to `anon_key`/`service_key` (resign mode).
    pub extra_anon: Option<&'a str>,
    pub extra_service: Option<&'a str>,
    pub dashboard_username: Option<&'a str>,
    pub dashboard_password: Option<&'a str>,
    pub jwt_issuer: Option<&'a str>,
}

/// Calls `found` with each `$NAME` in `text` (NAME = `[A-Za-z_][A-Za-z0-9_]*`), as
/// `(start, end)` byte ranges of the whole placeholder.
fn placeholders(text: &str, mut found: impl FnMut(usize, usize)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$'
            && bytes
                .get(i + 1)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        {
            let mut end = i + 2;
            while bytes
                .get(end)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                end += 1;
            }
            found(i, end);
            i = end;
        } else {
            i += 1;
        }
    }
}

/// Calls `visit` with every string used as a mapping key.
fn keys_of(node: &Yaml, visit: &mut dyn FnMut(&str)) {
    match node {
        Yaml::Array(items) => items.iter().for_each(|n| keys_of(n, visit)),
        Yaml::Hash(map) => {
            for (k, v) in map {
                if let Yaml::String(k) = k {
                    visit(k);
                }
                keys_of(v, visit);
            }
        }
        _ => {}
    }
}

/// Visits every string scalar that is a value (mapping keys are left alone).
fn strings_mut(node: &mut Yaml, visit: &mut dyn FnMut(&mut String)) {
    match node {
        Yaml::String(s) => visit(s),
        Yaml::Array(items) => items.iter_mut().for_each(|n| strings_mut(n, visit)),
        Yaml::Hash(map) => map.iter_mut().for_each(|(_, v)| strings_mut(v, visit)),
        _ => {}
    }
}

fn key(name: &str) -> Yaml {
    Yaml::String(name.into())
}

impl Template {
    /// Parses a template as Kong reads it (YAML 1.1: see [`crate::yaml::load_filled`]) and checks
    /// its placeholders. A UTF-8 byte order mark at the start is skipped.
    pub fn parse(name: &str, text: &str) -> Result<Template> {
        Template::parse_with(name, text, &KongEnv::default())
    }

    /// Parses like [`Template::parse`], filling in the variables of `env` first, as a
    /// textual substitution before Kong read the file would: in a plain scalar the
    /// result takes the type YAML 1.1 gives it (`connect_timeout: $T` with T=60 is a
    /// number, as Kong's schema wants), in a quoted one it stays a string.
    pub fn parse_with(name: &str, text: &str, env: &KongEnv) -> Result<Template> {
        let err = |problem: String| Error::KongTemplate {
            path: name.into(),
            problem,
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut docs = crate::yaml::load_filled(text, &|s| env.fill(s)).map_err(|e| {
            err(format!(
                "line {}: {}; fix the file or unset SUPAKEYS_KONG_TEMPLATE",
                e.line, e.problem
            ))
        })?;
        if docs.len() != 1 {
            return Err(err(format!(
                "holds {} YAML documents; Kong reads exactly one",
                docs.len()
            )));
        }
        let mut root = docs.remove(0);
        if !matches!(root, Yaml::Hash(_)) || root["_format_version"].is_badvalue() {
            return Err(err(
                "has no _format_version at the top level; it is not a Kong declarative config"
                    .into(),
            ));
        }
        if root["_format_version"].as_str().is_none() {
            return Err(err(
                "has a _format_version that is not a string; quote it, e.g. _format_version: '2.1' (Kong refuses a number)"
                    .into(),
            ));
        }
        let mut in_keys = BTreeSet::new();
        keys_of(&root, &mut |k| {
            placeholders(k, |start, end| {
                in_keys.insert(k[start..end].to_owned());
            });
        });
        if !in_keys.is_empty() {
            let names: Vec<_> = in_keys.into_iter().collect();
            return Err(err(format!(
                "uses {} in a mapping key; supakeys fills placeholders in values only (a key holding a secret would be a mistake): move it into a value",
                names.join(", ")
            )));
        }
        let mut used = BTreeSet::new();
        let mut unknown = BTreeSet::new();
        let mut unset = BTreeSet::new();
        strings_mut(&mut root, &mut |s| {
            placeholders(s, |start, end| {
                let name = &s[start + 1..end];
                if PLACEHOLDERS.contains(&name) {
                    used.insert(name.to_owned());
                } else if env.vars.contains_key(name) {
                    unset.insert(name.to_owned());
                } else {
                    unknown.insert(name.to_owned());
                }
            });
        });
        if let Some(name) = unset.first() {
            return Err(err(format!(
                "uses ${name}, named in SUPAKEYS_KONG_ENV, but {name} is not set; set it in supakeys' environment (Kong would otherwise read the literal text ${name})"
            )));
        }
        if !unknown.is_empty() {
            let names: Vec<_> = unknown.iter().map(|n| format!("${n}")).collect();
            return Err(err(format!(
                "uses {} which supakeys has no value for (known: {}); remove or rename them, or, if your Kong entrypoint filled them in from Kong's environment, name them in SUPAKEYS_KONG_ENV and give supakeys their values",
                names.join(", "),
                PLACEHOLDERS.join(", ")
            )));
        }
        Ok(Template {
            name: name.into(),
            root,
            used,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn uses(&self, placeholder: &str) -> bool {
        self.used.contains(placeholder)
    }

    /// Renders the template. Fails only when a used placeholder has no value.
    pub fn render(&self, values: &Values<'_>) -> Result<String> {
        let auth = lua_auth_expr(values);
        let realtime = lua_realtime_expr(values);
        let functions = lua_functions_expr(values);
        let oauth = well_known_oauth_path(values.jwt_issuer);
        let lookup = |name: &str| -> Option<&str> {
            Some(match name {
                "SUPABASE_ANON_KEY" => values.anon_key,
                "SUPABASE_SERVICE_KEY" => values.service_key,
                "SUPABASE_PUBLISHABLE_KEY" => values.publishable_key,
                "SUPABASE_SECRET_KEY" => values.secret_key,
                "ANON_KEY_ASYMMETRIC" => values.anon_asymmetric,
                "SERVICE_ROLE_KEY_ASYMMETRIC" => values.service_asymmetric,
                "DASHBOARD_USERNAME" => values.dashboard_username?,
                "DASHBOARD_PASSWORD" => values.dashboard_password?,
                "LUA_AUTH_EXPR" => &auth,
                "LUA_RT_WS_EXPR" => &realtime,
                "LUA_FUNCTIONS_EXPR" => &functions,
                "WELL_KNOWN_OAUTH_PATH" => &oauth,
                _ => return None,
            })
        };
        let mut root = self.root.clone();
        let mut missing = BTreeSet::new();
        let mut total = 0usize;
        strings_mut(&mut root, &mut |s| {
            if total > MAX_RENDERED_BYTES {
                return;
            }
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            placeholders(s, |start, end| {
                out.push_str(&s[last..start]);
                match lookup(&s[start + 1..end]) {
                    Some(v) => out.push_str(v),
                    None => {
                        missing.insert(s[start + 1..end].to_owned());
                        out.push_str(&s[start..end]);
                    }
                }
                last = end;
            });
            out.push_str(&s[last..]);
            total += out.len();
            *s = out;
        });
        if total > MAX_RENDERED_BYTES {
            return Err(Error::KongTemplate {
                path: self.name.clone(),
                problem: format!(
                    "renders to more than {} MiB once its placeholders are filled in (each Lua expression is about 1.5 KiB); use fewer placeholders",
                    MAX_RENDERED_BYTES >> 20
                ),
            });
        }
        if let Some(name) = missing.first() {
            return Err(Error::KongTemplate {
                path: self.name.clone(),
                problem: format!("uses ${name} but {name} is not set; set it"),
            });
        }
        fix_credentials(&mut root, values);
        add_jwks_route(&mut root);
        // The template's file name only: the same template mounted at another path (the
        // container's, the host's for `check`) renders the same bytes.
        let file = std::path::Path::new(&self.name)
            .file_name()
            .map_or(self.name.as_str(), |n| {
                n.to_str().unwrap_or("kong template")
            });
        let mut out = format!(
            "# Written by supakeys from the kong template {file}; do not edit: it is rewritten on every run.\n"
        );
        let body = crate::yaml::to_string(&root);
        // The output must read back as the tree it was written from.
        let back = YamlLoader::load_from_str(&body)
            .ok()
            .and_then(|mut d| d.pop());
        if back.as_ref() != Some(&root) {
            return Err(Error::KongTemplate {
                path: self.name.clone(),
                problem:
                    "rendered to YAML that does not read back (a bug in supakeys; please report it)"
                        .into(),
            });
        }
        out.push_str(&body);
        Ok(out)
    }
}

/// Drops empty key-auth credentials (as upstream does) and, in resign mode, adds the
/// legacy key next to the re-signed one so existing clients keep working.
fn fix_credentials(root: &mut Yaml, values: &Values<'_>) {
    let Some(Yaml::Array(consumers)) = root_mut(root, "consumers") else {
        return;
    };
    for consumer in consumers {
        let Yaml::Hash(consumer) = consumer else {
            continue;
        };
        let Some(Yaml::Array(credentials)) = consumer.get_mut(&key("keyauth_credentials")) else {
            continue;
        };
        credentials.retain(|c| !matches!(&c["key"], Yaml::String(k) if k.is_empty()));
        for (main, extra) in [
            (values.anon_key, values.extra_anon),
            (values.service_key, values.extra_service),
        ] {
            let Some(extra) = extra else { continue };
            let has = |k: &str| credentials.iter().any(|c| c["key"].as_str() == Some(k));
            if has(main) && !has(extra) {
                let mut credential = yaml_rust2::yaml::Hash::new();
                credential.insert(key("key"), key(extra));
                credentials.push(Yaml::Hash(credential));
            }
        }
    }
}

fn root_mut<'a>(root: &'a mut Yaml, name: &str) -> Option<&'a mut Yaml> {
    match root {
        Yaml::Hash(map) => map.get_mut(&key(name)),
        _ => None,
    }
}

/// Older templates lack the open JWKS route; without it clients cannot fetch the public
/// keys without an API key. It goes before the catch-all secured `/auth/v1/` route.
fn add_jwks_route(root: &mut Yaml) {
    let Some(Yaml::Array(services)) = root_mut(root, "services") else {
        return;
    };
    let serves = |service: &Yaml, path: &str| {
        service["routes"].as_vec().into_iter().flatten().any(|r| {
            r["paths"]
                .as_vec()
                .into_iter()
                .flatten()
                .any(|p| p.as_str() == Some(path))
        })
    };
    if services.iter().any(|s| serves(s, JWKS_PATH)) {
        return;
    }
    let at = services
        .iter()
        .position(|s| serves(s, "/auth/v1/"))
        .unwrap_or(0);
    let route = YamlLoader::load_from_str(&format!(
        "name: auth-v1-open-jwks\nurl: http://auth:9999/.well-known/jwks.json\nroutes:\n  - {{name: auth-v1-open-jwks, strip_path: true, paths: ['{JWKS_PATH}']}}\nplugins:\n  - name: cors\n"
    ))
    .expect("the JWKS route is valid YAML")
    .remove(0);
    services.insert(at, route);
}

/// `Authorization` for routes behind key-auth: a user's bearer token passes through unless
/// it is an opaque `sb_` key; an opaque API key becomes the matching asymmetric JWT.
pub fn lua_auth_expr(v: &Values<'_>) -> String {
    format!(
        "$((headers.authorization ~= nil and headers.authorization:sub(1, 10) ~= 'Bearer sb_' and headers.authorization) or (headers.apikey == '{secret}' and 'Bearer {service}') or (headers.apikey == '{publishable}' and 'Bearer {anon}') or headers.apikey)",
        secret = v.secret_key,
        publishable = v.publishable_key,
        service = v.service_asymmetric,
        anon = v.anon_asymmetric,
    )
}

/// Realtime's websocket: the `apikey` query parameter, translated, without `Bearer`.
pub fn lua_realtime_expr(v: &Values<'_>) -> String {
    format!(
        "$((query_params.apikey == '{secret}' and '{service}') or (query_params.apikey == '{publishable}' and '{anon}') or query_params.apikey)",
        secret = v.secret_key,
        publishable = v.publishable_key,
        service = v.service_asymmetric,
        anon = v.anon_asymmetric,
    )
}

/// Edge Functions' `sb-api-key`: the JWT behind an opaque key sent as `apikey` or as a
/// bearer token, else nothing.
pub fn lua_functions_expr(v: &Values<'_>) -> String {
    format!(
        "$((headers.apikey == '{secret}' and '{service}') or (headers.apikey == '{publishable}' and '{anon}') or (headers.authorization == 'Bearer {secret}' and '{service}') or (headers.authorization == 'Bearer {publishable}' and '{anon}') or nil)",
        secret = v.secret_key,
        publishable = v.publishable_key,
        service = v.service_asymmetric,
        anon = v.anon_asymmetric,
    )
}

/// RFC 8414 section 3.1: the metadata path gets the issuer's path appended.
pub fn well_known_oauth_path(issuer: Option<&str>) -> String {
    let path = issuer
        .and_then(|url| url.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .map(|p| p.trim_end_matches('/'))
        .unwrap_or("");
    format!("{OAUTH_PATH}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            anon_key: "ANON",
            service_key: "SERVICE",
            publishable_key: "sb_publishable_P",
            secret_key: "sb_secret_S",
            anon_asymmetric: "ANON_ES",
            service_asymmetric: "SERVICE_ES",
            extra_anon: None,
            extra_service: None,
            dashboard_username: Some("supabase"),
            dashboard_password: Some("pa'ss: word\n#x"),
            jwt_issuer: Some("https://example.com/auth/v1/"),
        }
    }

    /// A template with every placeholder, shaped like upstream's `volumes/api/kong.yml`.
    fn template() -> Template {
        Template::parse(
            "kong.template.yml",
            include_str!("../tests/fixtures/kong.template.yml"),
        )
        .unwrap()
    }

    fn load(text: &str) -> Yaml {
        YamlLoader::load_from_str(text).unwrap().remove(0)
    }

    #[test]
    fn template_renders_and_parses_back() {
        let out = template().render(&values()).unwrap();
        let doc = load(&out);
        assert_eq!(doc["_format_version"].as_str(), Some("2.1"));
        assert_eq!(
            doc["basicauth_credentials"][0]["password"].as_str(),
            Some("pa'ss: word\n#x"),
            "a hostile password stays one string value"
        );
        let anon = &doc["consumers"][1]["keyauth_credentials"];
        assert_eq!(anon[0]["key"].as_str(), Some("ANON"));
        assert_eq!(anon[1]["key"].as_str(), Some("sb_publishable_P"));
        assert!(!out.contains("$SUPABASE") && !out.contains("$LUA") && !out.contains("$DASHBOARD"));
        let oauth = doc["services"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|s| s["name"].as_str() == Some("well-known-oauth"))
            .unwrap();
        assert_eq!(
            oauth["routes"][0]["paths"][0].as_str(),
            Some("/.well-known/oauth-authorization-server/auth/v1")
        );
    }

    #[test]
    fn lua_auth_expression_translates_opaque_keys() {
        assert_eq!(
            lua_auth_expr(&values()),
            "$((headers.authorization ~= nil and headers.authorization:sub(1, 10) ~= 'Bearer sb_' and headers.authorization) or (headers.apikey == 'sb_secret_S' and 'Bearer SERVICE_ES') or (headers.apikey == 'sb_publishable_P' and 'Bearer ANON_ES') or headers.apikey)"
        );
        assert!(lua_functions_expr(&values()).ends_with("or nil)"));
    }

    #[test]
    fn resign_mode_keeps_the_legacy_key_as_a_second_credential() {
        let v = Values {
            extra_anon: Some("LEGACY_ANON"),
            ..values()
        };
        let doc = load(&template().render(&v).unwrap());
        let keys: Vec<_> = doc["consumers"][1]["keyauth_credentials"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|c| c["key"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(keys, ["ANON", "sb_publishable_P", "LEGACY_ANON"]);
    }

    #[test]
    fn old_template_gets_the_open_jwks_route_before_auth() {
        let old = "_format_version: '1.1'\nconsumers:\n  - username: anon\n    keyauth_credentials:\n      - key: $SUPABASE_ANON_KEY\n      - key: ''\nservices:\n  - name: auth-v1-open\n    url: http://auth:9999/verify\n    routes:\n      - {name: a, paths: [/auth/v1/verify]}\n  - name: auth-v1\n    url: http://auth:9999/\n    routes:\n      - {name: b, paths: [/auth/v1/]}\n";
        let t = Template::parse("old.yml", old).unwrap();
        let doc = load(&t.render(&values()).unwrap());
        let names: Vec<_> = doc["services"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["auth-v1-open", "auth-v1-open-jwks", "auth-v1"]);
        assert_eq!(
            doc["consumers"][0]["keyauth_credentials"]
                .as_vec()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn template_errors_name_the_problem() {
        let e = Template::parse("t.yml", "a: [").unwrap_err().to_string();
        assert!(e.contains("t.yml") && e.contains("not valid YAML"), "{e}");
        let e = Template::parse("t.yml", "services: []")
            .unwrap_err()
            .to_string();
        assert!(e.contains("_format_version"), "{e}");
        let e = Template::parse("t.yml", "_format_version: '2.1'\nx: $NOPE")
            .unwrap_err()
            .to_string();
        assert!(e.contains("$NOPE"), "{e}");
        let t = Template::parse("t.yml", "_format_version: '2.1'\nx: $DASHBOARD_PASSWORD").unwrap();
        let v = Values {
            dashboard_password: None,
            ..values()
        };
        assert!(
            t.render(&v)
                .unwrap_err()
                .to_string()
                .contains("DASHBOARD_PASSWORD is not set")
        );
    }

    #[test]
    fn oauth_path() {
        assert_eq!(well_known_oauth_path(None), OAUTH_PATH);
        assert_eq!(
            well_known_oauth_path(Some("http://localhost:8000")),
            OAUTH_PATH
        );
        assert_eq!(
            well_known_oauth_path(Some("http://localhost:8000/auth/v1")),
            "/.well-known/oauth-authorization-server/auth/v1"
        );
    }
}
