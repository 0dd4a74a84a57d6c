//! `supakeys --store kubernetes` end to end: the real binary against a stand-in API server
//! (`apiserver.py`, which restates the API's behaviour with its sources cited) over HTTPS
//! with a CA made here, the service account files in a temporary directory named by
//! SUPAKEYS_KUBERNETES_SERVICEACCOUNT, and the RBAC rules of the shipped Role
//! (`deploy/kubernetes/rbac.yaml`).

use crate::support::{Output, SECRET, Test, claims, legacy_key, verifies};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

const NAMESPACE: &str = "supabase";
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Certificates made once per test run: a cluster CA with a server certificate for
/// 127.0.0.1 (as the API server's names the service IP), the same server name signed by
/// another CA, and a certificate of the cluster CA for another name only.
fn pki() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ca = |name: &str| {
            run(&[
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", &format!("{name}.key"), "-out", &format!("{name}.crt"), "-days", "2",
                "-subj", &format!("/CN={name}"),
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        };
        ca("cluster-ca");
        ca("other-ca");
        let leaf = |name: &str, ca: &str, san: &str| {
            std::fs::write(
                dir.path().join(format!("{name}.ext")),
                format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"),
            )
            .unwrap();
            run(&[
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr"),
                "-subj", "/CN=kube-apiserver",
            ]);
            run(&[
                "x509", "-req", "-in", &format!("{name}.csr"), "-CA", &format!("{ca}.crt"),
                "-CAkey", &format!("{ca}.key"), "-CAcreateserial", "-out", &format!("{name}.crt"),
                "-days", "2", "-extfile", &format!("{name}.ext"),
            ]);
        };
        leaf("server", "cluster-ca", "IP:127.0.0.1,DNS:kubernetes.default.svc");
        leaf("server-other-ca", "other-ca", "IP:127.0.0.1,DNS:kubernetes.default.svc");
        leaf("server-other-name", "cluster-ca", "DNS:kubernetes.default.svc");
        dir
    })
    .path()
}

/// The rules of the shipped Role, as the stand-in's RBAC rules.
fn shipped_rules() -> Value {
    let text =
        std::fs::read_to_string(format!("{ROOT}/deploy/kubernetes/templates/rbac.yaml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let role = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Role"))
        .expect("rbac.yaml has a Role");
    let rules: Vec<Value> = role["rules"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|rule| {
            assert_eq!(rule["resources"][0].as_str(), Some("secrets"));
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_vec()
                    .map(|v| v.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default()
            };
            json!({"verbs": list("verbs"), "resourceNames": list("resourceNames")})
        })
        .collect();
    Value::Array(rules)
}

/// A stand-in API server with its service account directory; stopped when dropped.
pub struct Cluster {
    temp: tempfile::TempDir,
    world: PathBuf,
    pub sa: PathBuf,
    port: u16,
    server: Child,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::serving("server")
    }

    /// A cluster whose API server presents the certificate `cert` of [`pki`].
    fn serving(cert: &str) -> Cluster {
        let temp = tempfile::tempdir().unwrap();
        let sa = temp.path().join("serviceaccount");
        std::fs::create_dir(&sa).unwrap();
        std::fs::copy(pki().join("cluster-ca.crt"), sa.join("ca.crt")).unwrap();
        std::fs::write(sa.join("namespace"), NAMESPACE).unwrap();
        std::fs::write(sa.join("token"), "token-initial").unwrap();
        let world = temp.path().join("world.json");
        let initial = json!({
            "namespace": NAMESPACE,
            "user": format!("system:serviceaccount:{NAMESPACE}:supakeys"),
            "token": {"current": "token-initial", "file": sa.join("token")},
            "rbac": shipped_rules(),
            "secrets": {},
            "rv": 1000,
            "log": [],
        });
        std::fs::write(&world, serde_json::to_vec_pretty(&initial).unwrap()).unwrap();
        let mut server = Command::new("python3")
            .arg(format!("{ROOT}/tests/kubernetes/apiserver.py"))
            .arg(&world)
            .arg(pki().join(format!("{cert}.crt")))
            .arg(pki().join(format!("{cert}.key")))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        Cluster {
            temp,
            world,
            sa,
            port,
            server,
        }
    }

    /// A supakeys run in Kubernetes mode, as the Job runs it: the jwt Secret's values in the
    /// environment, the chart's Kong config rendered by the chart (no kong template).
    pub fn test(&self) -> Test {
        let mut test = Test::new();
        test.unset("SUPAKEYS_KONG_TEMPLATE")
            .unset("DASHBOARD_USERNAME")
            .unset("DASHBOARD_PASSWORD")
            .unset("SUPAKEYS_DIR")
            .env("SUPAKEYS_STORE", "kubernetes")
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", &self.port.to_string())
            .env(
                "SUPAKEYS_KUBERNETES_SERVICEACCOUNT",
                &self.sa.display().to_string(),
            );
        test
    }

    pub fn world(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.world).unwrap()).unwrap()
    }

    /// Changes the world between runs (the server reads it at each request).
    pub fn edit(&self, edit: impl FnOnce(&mut Value)) {
        let mut world = self.world();
        edit(&mut world);
        std::fs::write(&self.world, serde_json::to_vec_pretty(&world).unwrap()).unwrap();
    }

    /// A Secret's data, decoded.
    pub fn secret(&self, name: &str) -> Option<BTreeMap<String, String>> {
        use base64::Engine;
        let world = self.world();
        let secret = world["secrets"].get(name)?;
        Some(
            secret["data"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap())
                        .unwrap();
                    (k.clone(), String::from_utf8(bytes).unwrap())
                })
                .collect(),
        )
    }

    pub fn value(&self, secret: &str, key: &str) -> String {
        self.secret(secret)
            .unwrap_or_else(|| panic!("no Secret {secret}"))
            .remove(key)
            .unwrap_or_else(|| panic!("Secret {secret} has no key {key}"))
    }

    fn resource_versions(&self) -> Vec<String> {
        let world = self.world();
        ["supakeys-state", "supakeys-apikey", "supakeys-files"]
            .iter()
            .map(|n| world["secrets"][n]["metadata"]["resourceVersion"].to_string())
            .collect()
    }

    /// The requests served so far, as `METHOD name [dry] code reason`.
    pub fn log(&self) -> Vec<String> {
        self.world()["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let name = r["name"].as_str().unwrap_or("?");
                let mut line = format!("{} {name}", r["method"].as_str().unwrap());
                if r["dryRun"].is_string() {
                    line.push_str(" dry");
                }
                line.push_str(&format!(" {}", r["code"]));
                if let Some(reason) = r["reason"].as_str() {
                    line.push(' ');
                    line.push_str(reason);
                }
                line
            })
            .collect()
    }

    /// Requests that changed something: writes that were not dry runs and succeeded.
    pub fn writes(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| {
                !l.starts_with("GET")
                    && !l.contains(" dry ")
                    && (l.ends_with(" 200") || l.ends_with(" 201"))
            })
            .collect()
    }

    pub fn clear_log(&self) {
        self.edit(|w| w["log"] = json!([]));
    }

    /// Takes `verb` away from the Role: for `name` only, or (`None`) from the rules without
    /// resourceNames.
    pub fn revoke_verb(&self, verb: &str, name: Option<&str>) {
        self.edit(|w| {
            let verb = json!(verb);
            let mut rules = Vec::new();
            for rule in w["rbac"].as_array().unwrap() {
                let verbs = rule["verbs"].as_array().unwrap().clone();
                let names = rule["resourceNames"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let hit = verbs.contains(&verb)
                    && match name {
                        None => names.is_empty(),
                        Some(n) => names.contains(&json!(n)),
                    };
                if !hit {
                    rules.push(rule.clone());
                    continue;
                }
                let fewer: Vec<Value> = verbs.iter().filter(|v| **v != verb).cloned().collect();
                match name {
                    None => rules.push(json!({"verbs": fewer, "resourceNames": names})),
                    Some(n) => {
                        let others: Vec<Value> =
                            names.iter().filter(|x| **x != json!(n)).cloned().collect();
                        // An empty resourceNames would allow every name.
                        if !others.is_empty() {
                            rules.push(json!({"verbs": verbs, "resourceNames": others}));
                        }
                        rules.push(json!({"verbs": fewer, "resourceNames": [n]}));
                    }
                }
            }
            w["rbac"] = Value::Array(rules);
        });
    }

    pub fn scratch(&self) -> &Path {
        self.temp.path()
    }
}

fn state_of(cluster: &Cluster) -> Value {
    serde_json::from_str(&cluster.value("supakeys-state", "state.json")).unwrap()
}

fn kids(cluster: &Cluster) -> Vec<(String, String)> {
    state_of(cluster)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn succeeds(out: &Output) {
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
}

#[test]
fn a_first_run_writes_the_state_the_charts_apikey_secret_and_the_files() {
    let cluster = Cluster::start();
    let out = cluster.test().run();
    succeeds(&out);
    // Three reads that find nothing, each write checked as a dry run, then made.
    assert_eq!(
        cluster.log(),
        [
            "GET supakeys-state 404 NotFound",
            "GET supakeys-apikey 404 NotFound",
            "GET supakeys-files 404 NotFound",
            "POST supakeys-state dry 201",
            "POST supakeys-apikey dry 201",
            "POST supakeys-files dry 201",
            "POST supakeys-state 201",
            "POST supakeys-apikey 201",
            "POST supakeys-files 201",
        ]
    );
    let state = state_of(&cluster);
    let kid = state["keys"][0]["kid"].as_str().unwrap();
    // The chart's six keys, under the chart's names.
    let apikey = cluster.secret("supakeys-apikey").unwrap();
    assert_eq!(
        apikey.keys().collect::<Vec<_>>(),
        [
            "anonKeyAsymmetric",
            "jwtJwks",
            "jwtKeys",
            "publishableKey",
            "secretKey",
            "serviceRoleKeyAsymmetric"
        ]
    );
    let jwt_keys: Value = serde_json::from_str(&apikey["jwtKeys"]).unwrap();
    let signers: Vec<&Value> = jwt_keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| {
            k["key_ops"]
                .as_array()
                .is_some_and(|o| o.contains(&json!("sign")))
        })
        .collect();
    assert_eq!(signers.len(), 1);
    assert_eq!(signers[0]["kid"], kid);
    let jwks: Value = serde_json::from_str(&apikey["jwtJwks"]).unwrap();
    assert!(verifies(&apikey["anonKeyAsymmetric"], &jwks));
    assert!(verifies(&apikey["serviceRoleKeyAsymmetric"], &jwks));
    assert!(apikey["publishableKey"].starts_with("sb_publishable_"));
    assert!(apikey["secretKey"].starts_with("sb_secret_"));
    // Every file of the keys directory, and each variable under STEM.NAME.
    let files = cluster.secret("supakeys-files").unwrap();
    for name in [
        "auth.env",
        "jwks.json",
        "jwt_jwks.json",
        "realtime.env",
        "storage.env",
        "functions.env",
        "studio.env",
        "supabase.env",
        "gateway.env",
    ] {
        assert!(files.contains_key(name), "{name}");
    }
    assert!(!files.contains_key("state.json") && !files.contains_key("kong.yml"));
    assert_eq!(
        files["functions.SUPABASE_JWKS"],
        files["jwks.json"].trim_end()
    );
    assert_eq!(files["supabase.JWT_KEYS"], apikey["jwtKeys"]);
    assert_eq!(files["auth.GOTRUE_JWT_KEYS"], apikey["jwtKeys"]);
    // Labelled as supakeys' own.
    let world = cluster.world();
    assert_eq!(
        world["secrets"]["supakeys-apikey"]["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "supakeys"
    );
    assert!(!out.stderr.contains(SECRET));
}

#[test]
fn a_rerun_with_the_same_inputs_sends_no_write() {
    let cluster = Cluster::start();
    let test = cluster.test();
    succeeds(&test.run());
    let before = cluster.world()["secrets"].clone();
    cluster.clear_log();
    succeeds(&test.run());
    assert_eq!(
        cluster.log(),
        [
            "GET supakeys-state 200",
            "GET supakeys-apikey 200",
            "GET supakeys-files 200"
        ],
        "a rerun reads and writes nothing, not even a dry run"
    );
    assert_eq!(cluster.world()["secrets"], before);
}

#[test]
fn legacy_keys_are_re_signed_with_their_own_claims() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    let anon = legacy_key("anon");
    test.env("ANON_KEY", &anon)
        .env("SERVICE_ROLE_KEY", &legacy_key("service_role"));
    succeeds(&test.run());
    let resigned = cluster.value("supakeys-apikey", "anonKeyAsymmetric");
    assert_eq!(claims(&resigned), claims(&anon));
    // Services keep the legacy key (keep mode), the gateway accepts both.
    assert_eq!(cluster.value("supakeys-files", "storage.ANON_KEY"), anon);
    assert_eq!(cluster.value("supakeys-files", "gateway.ANON_KEY"), anon);
}

/// An ES256 key as upstream's `JWT_KEYS` holds it (private JWK with sign, then the oct key).
fn upstream_jwt_keys() -> (String, String) {
    let key = supakeys::jwk::SigningKey::generate(
        supakeys::jwk::KeySpec::Es256,
        supakeys::jwk::Kid::parse("hand-filled-kid").unwrap(),
    )
    .unwrap();
    let keys = json!([key.private_jwk(), supakeys::jwk::oct_jwk(SECRET)]);
    (keys.to_string(), key.kid().to_string())
}

fn chart_secret(cluster: &Cluster, name: &str, data: &[(&str, &str)], labels: Value) {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String(engine.encode(v))))
        .collect();
    cluster.edit(|w| {
        w["secrets"][name] = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": "7",
                         "uid": "u-1", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": labels},
            "data": data,
        });
    });
}

/// Opaque keys in upstream's format (prefix, 22 random characters, "_", 8-character checksum).
fn opaque(prefix: &str) -> String {
    use sha2::Digest;
    let random = "AbCdEfGhIjKlMnOpQrStUv";
    let sum = sha2::Sha256::digest(format!("supabase-self-hosted|{prefix}{random}"));
    format!("{prefix}{random}_{}", &supakeys::jwk::b64(&sum)[..8])
}

#[test]
fn an_existing_release_with_hand_filled_apikey_values_is_adopted_not_replaced() {
    // The chart rendered RELEASE-supabase-apikey from hand-filled secret.apikey values; the
    // pre-upgrade hook runs before Helm removes it.
    let cluster = Cluster::start();
    let (jwt_keys, kid) = upstream_jwt_keys();
    let (publishable, secret) = (opaque("sb_publishable_"), opaque("sb_secret_"));
    chart_secret(
        &cluster,
        "supabase-apikey",
        &[
            ("publishableKey", &publishable),
            ("secretKey", &secret),
            ("jwtKeys", &jwt_keys),
            ("jwtJwks", "{}"),
            ("anonKeyAsymmetric", ""),
            ("serviceRoleKeyAsymmetric", ""),
        ],
        json!({"app.kubernetes.io/managed-by": "Helm"}),
    );
    let mut test = cluster.test();
    test.env("SUPAKEYS_KUBERNETES_ADOPT", "supabase-apikey");
    let out = test.run();
    succeeds(&out);
    assert!(out.stderr.contains("adopting JWT_KEYS, SUPABASE_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY from Secret supabase-apikey"), "{}", out.stderr);
    assert_eq!(kids(&cluster), [(kid.clone(), "current".into())]);
    assert_eq!(
        cluster.value("supakeys-apikey", "publishableKey"),
        publishable
    );
    assert_eq!(cluster.value("supakeys-apikey", "secretKey"), secret);
    let jwks: Value = serde_json::from_str(&cluster.value("supakeys-apikey", "jwtJwks")).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
    // The chart's Secret is read, never written.
    assert!(
        cluster
            .writes()
            .iter()
            .all(|w| !w.contains("supabase-apikey"))
    );
    assert_eq!(
        cluster.world()["secrets"]["supabase-apikey"]["metadata"]["resourceVersion"],
        "7"
    );
}

#[test]
fn a_hand_made_apikey_secret_named_by_secret_ref_is_adopted_and_taken_over() {
    let cluster = Cluster::start();
    let (jwt_keys, kid) = upstream_jwt_keys();
    let publishable = opaque("sb_publishable_");
    chart_secret(
        &cluster,
        "supakeys-apikey",
        &[("jwtKeys", &jwt_keys), ("publishableKey", &publishable)],
        json!({"team": "platform"}),
    );
    succeeds(&cluster.test().run());
    assert_eq!(kids(&cluster), [(kid, "current".into())]);
    assert_eq!(
        cluster.value("supakeys-apikey", "publishableKey"),
        publishable
    );
    let labels = &cluster.world()["secrets"]["supakeys-apikey"]["metadata"]["labels"];
    assert_eq!(labels["team"], "platform", "labels of others stay");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "supakeys");
}

#[test]
fn a_lost_state_secret_keeps_the_signing_key_of_the_apikey_secret() {
    // The manifests name the release's former apikey Secret, which no longer exists: the
    // keys are taken from supakeys' own apikey Secret instead of generating new ones.
    let cluster = Cluster::start();
    let mut test = cluster.test();
    test.env("SUPAKEYS_KUBERNETES_ADOPT", "supabase-apikey");
    succeeds(&test.run());
    let before = kids(&cluster);
    let publishable = cluster.value("supakeys-apikey", "publishableKey");
    cluster.edit(|w| {
        w["secrets"]
            .as_object_mut()
            .unwrap()
            .remove("supakeys-state");
    });
    let out = test.run();
    succeeds(&out);
    assert!(
        out.stderr.contains("from Secret supakeys-apikey"),
        "{}",
        out.stderr
    );
    assert_eq!(kids(&cluster)[0].0, before[0].0);
    assert_eq!(
        cluster.value("supakeys-apikey", "publishableKey"),
        publishable
    );
}

#[test]
fn a_secret_managed_by_helm_is_never_written() {
    let cluster = Cluster::start();
    chart_secret(
        &cluster,
        "supakeys-apikey",
        &[("jwtKeys", "")],
        json!({"app.kubernetes.io/managed-by": "Helm"}),
    );
    cluster
        .test()
        .run()
        .fails_with(4, "the Secret supakeys-apikey is managed by Helm");
    assert_eq!(cluster.writes(), Vec::<String>::new());
}

#[test]
fn two_jobs_at_once_end_with_one_keypair() {
    let cluster = Cluster::start();
    // Both read the state before either writes: both generate a key, one create wins.
    cluster.edit(|w| w["barrier"] = json!({"name": "supakeys-state", "count": 2}));
    let test = cluster.test();
    let a = test.command().stderr(Stdio::piped()).spawn().unwrap();
    let b = test.command().stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (ea, eb) = (
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr),
    );
    assert!(a.status.success() && b.status.success(), "{ea}\n{eb}");
    let log = cluster.log();
    let count = |line: &str| log.iter().filter(|l| *l == line).count();
    assert_eq!(count("POST supakeys-state 201"), 1, "{log:#?}");
    // The other create (or its dry run, when the winner was that far ahead) found it there.
    let lost = log
        .iter()
        .filter(|l| l.starts_with("POST supakeys-state") && l.ends_with("409 AlreadyExists"))
        .count();
    assert_eq!(lost, 1, "{log:#?}");
    let keys = kids(&cluster);
    assert_eq!(keys.len(), 1, "one keypair: {keys:?}");
    let kid = &keys[0].0;
    let jwks: Value = serde_json::from_str(&cluster.value("supakeys-apikey", "jwtJwks")).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
    assert!(
        (ea.contains("a concurrent change") || eb.contains("a concurrent change")),
        "{ea}\n{eb}"
    );
    // Both logged the kid that lives in the state.
    assert!(
        ea.contains(kid.as_str()) && eb.contains(kid.as_str()),
        "{ea}\n{eb}"
    );
}

#[test]
fn a_change_between_read_and_write_is_read_again_and_planned_again() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    succeeds(&test.run());
    // Another writer touches the apikey Secret right after supakeys read it.
    cluster.edit(|w| w["touch_after_get"] = json!({"name": "supakeys-apikey", "times": 1}));
    cluster.clear_log();
    test.args(&["keys", "standby"]);
    succeeds(&test.run());
    let log = cluster.log();
    assert!(
        log.contains(&"PUT supakeys-apikey dry 409 Conflict".to_owned()),
        "{log:#?}"
    );
    let statuses: Vec<String> = kids(&cluster).into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["current", "standby"]);
    assert_eq!(
        cluster
            .writes()
            .iter()
            .filter(|w| w.contains("supakeys-state"))
            .count(),
        1,
        "{log:#?}"
    );
}

#[test]
fn a_conflict_after_the_state_was_written_does_not_repeat_the_transition() {
    // The rotation is written to the state, then the apikey write meets a concurrent
    // change: the next attempt finds the rotation done and must only complete the outputs
    // (rotating again would be refused: there is no standby key left).
    let cluster = Cluster::start();
    let mut test = cluster.test();
    succeeds(&test.run());
    test.args(&["keys", "standby"]);
    succeeds(&test.run());
    cluster.edit(|w| {
        w["touch_after_write"] = json!({"after": "supakeys-state", "name": "supakeys-apikey"})
    });
    cluster.clear_log();
    test.args(&["keys", "rotate"]);
    let out = test.run();
    succeeds(&out);
    let log = cluster.log();
    assert!(
        log.contains(&"PUT supakeys-state 200".to_owned()),
        "{log:#?}"
    );
    assert!(
        log.contains(&"PUT supakeys-apikey 409 Conflict".to_owned()),
        "{log:#?}"
    );
    let keys = kids(&cluster);
    let statuses: Vec<&str> = keys.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, ["previous", "current"]);
    let current = &keys[1].0;
    let jwt_keys: Value =
        serde_json::from_str(&cluster.value("supakeys-apikey", "jwtKeys")).unwrap();
    let signer = jwt_keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| {
            k["key_ops"]
                .as_array()
                .is_some_and(|o| o.contains(&json!("sign")))
        })
        .unwrap();
    assert_eq!(signer["kid"], current.as_str());
    assert!(
        out.stdout
            .contains("kubectl rollout restart deployment/supabase-supabase-auth"),
        "{}",
        out.stdout
    );
}

#[test]
fn conflicts_at_every_attempt_give_up_with_exit_5() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    succeeds(&test.run());
    cluster.edit(|w| w["touch_after_get"] = json!({"name": "supakeys-files", "times": -1}));
    test.args(&["keys", "standby"]);
    test.run()
        .fails_with(5, "changed under supakeys at each of 5 attempts");
    let statuses: Vec<String> = kids(&cluster).into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["current"]);
}

#[test]
fn a_missing_rbac_rule_is_named_and_nothing_is_written() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    succeeds(&test.run());
    let before = cluster.resource_versions();
    cluster.revoke_verb("update", Some("supakeys-files"));
    cluster.clear_log();
    test.args(&["keys", "standby"]);
    test.run().fails_with(
        4,
        "RBAC forbids update on secrets \"supakeys-files\" in namespace supabase (403 Forbidden). Nothing was written. Add to the Role bound to supakeys' ServiceAccount the rule {apiGroups: [\"\"], resources: [\"secrets\"], verbs: [\"update\"], resourceNames: [\"supakeys-files\"]}",
    );
    assert_eq!(cluster.writes(), Vec::<String>::new());
    assert_eq!(cluster.resource_versions(), before);
}

#[test]
fn a_role_without_create_is_named_on_the_first_run() {
    let cluster = Cluster::start();
    cluster.revoke_verb("create", None);
    cluster.test().run().fails_with(
        4,
        "RBAC forbids create on secrets in namespace supabase (403 Forbidden). Nothing was written.",
    );
    assert!(cluster.world()["secrets"].as_object().unwrap().is_empty());
}

#[test]
fn the_token_is_read_again_for_every_request() {
    // Projected tokens rotate; the kubelet writes the new one while supakeys runs.
    let cluster = Cluster::start();
    cluster.edit(|w| w["token"]["rotate_after"] = json!(2));
    succeeds(&cluster.test().run());
    assert!(cluster.world()["token"]["rotations"].as_u64().unwrap() >= 3);
    assert!(!cluster.log().iter().any(|l| l.contains("401")));
}

#[test]
fn an_expired_token_is_named() {
    let cluster = Cluster::start();
    std::fs::write(cluster.sa.join("token"), "token-expired").unwrap();
    cluster
        .test()
        .run()
        .fails_with(4, "refused the service account token")
        .fails_with(4, "serviceaccount/token (401 Unauthorized)");
}

#[test]
fn the_api_server_is_verified_against_the_cluster_ca_and_its_name() {
    for cert in ["server-other-ca", "server-other-name"] {
        let cluster = Cluster::serving(cert);
        let out = cluster.test().run();
        out.fails_with(4, "TLS failed");
        assert!(
            cluster.log().is_empty(),
            "{cert}: no request reached the server"
        );
    }
}

#[test]
fn outside_a_pod_the_missing_variable_is_named() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    test.unset("KUBERNETES_SERVICE_HOST");
    test.run()
        .fails_with(2, "KUBERNETES_SERVICE_HOST is not set");
    let mut test = cluster.test();
    test.env(
        "SUPAKEYS_KUBERNETES_SERVICEACCOUNT",
        &cluster.scratch().join("none").display().to_string(),
    );
    test.run().fails_with(4, "none/namespace cannot be read");
}

#[test]
fn an_immutable_secret_is_refused_before_anything_is_written() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    succeeds(&test.run());
    cluster.edit(|w| w["secrets"]["supakeys-files"]["immutable"] = json!(true));
    cluster.clear_log();
    test.args(&["keys", "standby"]);
    test.run()
        .fails_with(4, "the Secret supakeys-files is immutable");
    assert_eq!(cluster.writes(), Vec::<String>::new());
}

#[test]
fn a_secret_beyond_the_size_limit_is_refused_before_sending() {
    // Hundreds of previous keys: every verifier key set lists them all, in several files.
    let cluster = Cluster::start();
    let test = cluster.test();
    succeeds(&test.run());
    let mut state = state_of(&cluster);
    let template = state["keys"][0].clone();
    let keys = state["keys"].as_array_mut().unwrap();
    for i in 0..700 {
        let key = supakeys::jwk::SigningKey::generate(
            supakeys::jwk::KeySpec::Es256,
            supakeys::jwk::Kid::parse(&format!("old-{i}")).unwrap(),
        )
        .unwrap();
        let mut record = template.clone();
        record["kid"] = json!(format!("old-{i}"));
        record["status"] = json!("previous");
        record["jwk"] = key.private_jwk();
        keys.push(record);
    }
    let text = serde_json::to_string_pretty(&state).unwrap();
    cluster.edit(|w| {
        use base64::Engine;
        w["secrets"]["supakeys-state"]["data"]["state.json"] =
            json!(base64::engine::general_purpose::STANDARD.encode(text));
    });
    cluster.clear_log();
    test.run()
        .fails_with(2, "the Secret supakeys-files would hold");
    assert_eq!(cluster.writes(), Vec::<String>::new());
    assert!(
        !cluster.log().iter().any(|l| l.contains("dry")),
        "checked before sending"
    );
}

#[test]
fn lifecycle_commands_work_on_the_secrets_and_name_the_deployments_to_restart() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    test.env("SUPAKEYS_KUBERNETES_RELEASE", "demo");
    succeeds(&test.run());
    test.args(&["keys", "standby"]);
    let out = test.run();
    succeeds(&out);
    // The standby key enters every verifier key set: auth, rest, realtime, storage.
    for deployment in [
        "demo-supabase-auth",
        "demo-supabase-rest",
        "demo-supabase-realtime",
        "demo-supabase-storage",
    ] {
        assert!(
            out.stdout
                .contains(&format!("kubectl rollout restart deployment/{deployment}")),
            "{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("demo-supabase-kong"), "{}", out.stdout);
    let old = kids(&cluster)[0].0.clone();
    test.args(&["keys", "rotate"]);
    let out = test.run();
    succeeds(&out);
    // New signatures: the gateway's asymmetric tokens change too.
    assert!(
        out.stdout.contains("deployment/demo-supabase-kong"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("kubectl create -f deploy/kubernetes/jobs/doctor.yaml")
    );
    test.args(&["keys", "revoke", &old]);
    succeeds(&test.run());
    let statuses: Vec<String> = kids(&cluster).into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["revoked", "current"]);
    test.args(&["keys", "list", "--format", "json"]);
    let out = test.run();
    succeeds(&out);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list["keys"][1]["status"], "current");
    assert_eq!(list["legacy_hs256"], "accepted");
    test.args(&["check"]);
    succeeds(&test.run());
    test.args(&["print-env"]);
    let out = test.run();
    succeeds(&out);
    assert_eq!(out.stdout, cluster.value("supakeys-files", "supabase.env"));
}

#[test]
fn check_finds_an_apikey_secret_edited_by_hand() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    succeeds(&test.run());
    cluster.edit(|w| {
        use base64::Engine;
        w["secrets"]["supakeys-apikey"]["data"]["jwtJwks"] =
            json!(base64::engine::general_purpose::STANDARD.encode("{\"keys\":[]}"));
    });
    test.args(&["check"]);
    test.run().fails_with(
        6,
        "key jwtJwks of Secret supakeys-apikey differs from JWT_JWKS of supabase.env",
    );
    // init repairs it.
    test.args(&[]);
    succeeds(&test.run());
    test.args(&["check"]);
    succeeds(&test.run());
}

#[test]
fn renamed_chart_keys_follow_secret_ref_key() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    test.env(
        "SUPAKEYS_KUBERNETES_APIKEY_KEYS",
        "jwtKeys=GOTRUE_KEYS, jwtJwks=JWKS",
    );
    succeeds(&test.run());
    let apikey = cluster.secret("supakeys-apikey").unwrap();
    assert!(apikey.contains_key("GOTRUE_KEYS") && apikey.contains_key("JWKS"));
    assert!(!apikey.contains_key("jwtKeys"));
    test.env("SUPAKEYS_KUBERNETES_APIKEY_KEYS", "jwtKey=x");
    test.run().fails_with(
        2,
        "names \"jwtKey\", which is not a key of the chart's apikey Secret",
    );
}

#[test]
fn doctor_reads_the_secrets_and_checks_the_stack() {
    let cluster = Cluster::start();
    let mut test = cluster.test();
    test.env("ANON_KEY", &legacy_key("anon"))
        .env("SERVICE_ROLE_KEY", &legacy_key("service_role"));
    succeeds(&test.run());
    let state_text = cluster.value("supakeys-state", "state.json");
    let state =
        supakeys::state::State::parse(state_text.as_bytes(), Path::new("state.json"), &|| None)
            .unwrap();
    let now = crate::support::now();
    let claims = json!({"sub":"5c5f3f4e-1d2b-4c57-9a8e-0d1e2f3a4b5c","role":"authenticated","iat":now,"exp":now+3600});
    let var = |name: &str| cluster.value("supakeys-files", &format!("gateway.{name}"));
    let stack = crate::doctor::Stack {
        jwks: cluster.value("supakeys-files", "jwks.json"),
        publishable: var("SUPABASE_PUBLISHABLE_KEY"),
        secret: var("SUPABASE_SECRET_KEY"),
        anon: var("ANON_KEY"),
        service: var("SERVICE_ROLE_KEY"),
        anon_asymmetric: var("ANON_KEY_ASYMMETRIC"),
        service_asymmetric: var("SERVICE_ROLE_KEY_ASYMMETRIC"),
        sign_in_token: supakeys::jwt::sign(
            state.current(),
            &supakeys::jwk::b64(claims.to_string().as_bytes()),
        ),
        ..Default::default()
    };
    let url = crate::doctor::serve(stack.clone());
    test.args(&[
        "doctor",
        "--url",
        &url,
        "--format",
        "json",
        "--sign-in-anonymously",
    ]);
    let out = test.run();
    succeeds(&out);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(crate::doctor::lines(&report, "fail"), Vec::<String>::new());
    assert!(crate::doctor::lines(&report, "pass").contains(&"auth/signing-key/current".to_owned()));
    assert!(
        report["dir"]
            .as_str()
            .unwrap()
            .contains("namespace supabase"),
        "{report}"
    );
    // A Storage still on an older key set: the fix restarts the chart's Deployment.
    let url = crate::doctor::serve(crate::doctor::Stack {
        storage_unknown_kids: vec![state.current().kid().to_string()],
        ..stack
    });
    test.args(&["doctor", "--url", &url, "--format", "json"]);
    let out = test.run();
    assert_eq!(out.code, 7, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(
        failed[0]["fix"],
        "kubectl rollout restart deployment/supabase-supabase-storage"
    );
    // Doctor only reads.
    assert_eq!(
        cluster.writes().len(),
        3,
        "the first run's three creates, nothing after: {:#?}",
        cluster.log()
    );
}

/// The facts of chart `supabase` 0.7.2 that supakeys relies on, restated with their sources
/// in `chart-0.7.2.json`: the code's key names and readers are the chart's.
#[test]
fn the_chart_facts_match_the_code() {
    let facts: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/tests/kubernetes/chart-0.7.2.json")).unwrap(),
    )
    .unwrap();
    let keys: Vec<&str> = facts["apikey_secret"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let code_keys: Vec<&str> = supakeys::chart::CHART_KEYS
        .iter()
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(code_keys, keys);
    let readers: Vec<(String, String, String)> = facts["readers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["secret"] == "apikey")
        .map(|r| {
            (
                r["service"].as_str().unwrap().to_owned(),
                r["env"].as_str().unwrap().to_owned(),
                r["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let code_readers: Vec<(String, String, String)> = supakeys::chart::CHART_READERS
        .iter()
        .map(|(s, e, k)| ((*s).to_owned(), (*e).to_owned(), (*k).to_owned()))
        .collect();
    assert_eq!(code_readers, readers);
}
