//! The Kubernetes store: the state and the output live in Secrets of the pod's namespace
//! instead of a keys directory, for the supabase-kubernetes chart (`supabase` 0.7.2).
//!
//! Three Secrets, named from one prefix (`SUPAKEYS_KUBERNETES_SECRETS`, default `supakeys`):
//!
//! - `PREFIX-state`: key `state.json`, the bytes the directory store writes to `state.json`.
//! - `PREFIX-apikey`: the Secret the chart's `secret.apikey.secretRef` names, with the chart's
//!   six keys ([`CHART_KEYS`], renamed as the chart's `secretRefKey` renames them).
//! - `PREFIX-files`: every other file the directory store writes, under its file name (mount
//!   it as a volume for the Docker layout), and each variable of each env file as
//!   `STEM.NAME` (`storage.AUTH_JWT_SECRET`, `functions.SUPABASE_JWKS`) for `secretKeyRef`.
//!
//! Optimistic concurrency replaces the directory lock, as client-go's
//! `retry.RetryOnConflict` and kube-rs' `Api::replace` do: every replace carries the
//! resourceVersion it read, every create fails when the name exists, and a `409` (or a
//! Secret deleted since it was read) means: read again, plan again, try again, at most
//! [`ATTEMPTS`] times. Two Jobs started at once therefore end with one keypair: the second
//! one's create of the state fails, and its next plan adopts the first one's state.
//!
//! Before the first write of an attempt every write is sent as a dry run: RBAC, admission
//! and validation refuse it then, while nothing is written (a Role without `update` on
//! one Secret leaves all three as they were).

mod api;

use crate::chart::{CHART_KEYS, CHART_READERS, deployment};
use crate::config::{Adoptable, KubernetesSettings as Settings};
use crate::error::{Error, Result};
use crate::render::PlannedFile;
use crate::secret::Secret;
use crate::state::{self, State};
use crate::store::{Applied, Loaded, Store};
use api::{Cluster, Mode, SecretObject, WriteError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Reads and plans per run at most (client-go's `retry.DefaultRetry` makes 5 steps).
pub const ATTEMPTS: u32 = 5;
/// The API refuses a Secret whose data exceeds 1 MiB (`MaxSecretSize`, kubernetes/kubernetes
/// `pkg/apis/core/validation/validation.go`, `ValidateSecret`); supakeys also reads each
/// Secret back, base64-encoded in a JSON answer that its HTTP client takes up to
/// [`crate::http::MAX_BODY`]. A Secret it writes stays under both.
pub const MAX_DATA_BYTES: usize = {
    let api = 1 << 20;
    let readable = (crate::http::MAX_BODY - (64 << 10)) / 4 * 3;
    if api < readable { api } else { readable }
};

/// The keys of the apikey Secret a first run adopts, as the variables they stand for.
const ADOPTED: [(&str, &str); 3] = [
    ("jwtKeys", "JWT_KEYS"),
    ("publishableKey", "SUPABASE_PUBLISHABLE_KEY"),
    ("secretKey", "SUPABASE_SECRET_KEY"),
];

/// The three Secrets and their roles.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Which {
    State,
    Apikey,
    Files,
}

const WHICH: [Which; 3] = [Which::State, Which::Apikey, Which::Files];

impl Which {
    fn component(self) -> &'static str {
        match self {
            Which::State => "state",
            Which::Apikey => "apikey",
            Which::Files => "files",
        }
    }
}

type Data = BTreeMap<String, Zeroizing<Vec<u8>>>;

/// The three Secrets as read at one moment.
struct Snapshot {
    secrets: [Option<SecretObject>; 3],
}

impl Snapshot {
    fn get(&self, which: Which) -> Option<&SecretObject> {
        self.secrets[which as usize].as_ref()
    }
}

/// One write of an attempt.
struct Write {
    which: Which,
    data: Data,
}

/// The Secrets of one namespace as a [`Store`].
pub struct KubeStore {
    cluster: Cluster,
    settings: Settings,
    /// The Secrets as read by the first read-only call (`check`, `keys list`, `doctor`).
    snapshot: std::cell::OnceCell<Snapshot>,
    /// The apikey keys and whether the files Secret changed in the last [`Store::update`].
    changed_keys: Vec<String>,
    files_changed: bool,
    /// This run's state write happened (in an earlier attempt).
    committed: bool,
    /// The files this run wrote, over all attempts.
    written: Vec<&'static str>,
}

impl KubeStore {
    pub fn connect(settings: &Settings) -> Result<KubeStore> {
        let cluster = Cluster::connect(settings)?;
        Ok(KubeStore {
            cluster,
            settings: settings.clone(),
            snapshot: std::cell::OnceCell::new(),
            changed_keys: Vec::new(),
            files_changed: false,
            committed: false,
            written: Vec::new(),
        })
    }

    fn name(&self, which: Which) -> String {
        format!("{}-{}", self.settings.prefix, which.component())
    }

    fn labels(which: Which) -> Value {
        json!({
            "app.kubernetes.io/name": "supakeys",
            "app.kubernetes.io/component": which.component(),
            "app.kubernetes.io/managed-by": "supakeys",
        })
    }

    fn read_all(&self) -> Result<Snapshot> {
        let mut secrets = [None, None, None];
        for which in WHICH {
            let secret = self.cluster.get(&self.name(which))?;
            // A Secret Helm renders is rewritten by the chart after every hook: writing it is
            // futile, and it means secret.apikey.secretRef does not name supakeys' Secret.
            if let Some(s) = &secret
                && s.managed_by.as_deref() == Some("Helm")
            {
                return Err(Error::KubernetesSecretUnusable {
                    name: self.name(which),
                    problem: "is managed by Helm (a chart renders it, and rewrites it on every upgrade): \
                              give supakeys a prefix of its own (SUPAKEYS_KUBERNETES_SECRETS), point the \
                              chart's secret.apikey.secretRef at PREFIX-apikey, and name the chart's Secret \
                              in SUPAKEYS_KUBERNETES_ADOPT to adopt its keys"
                        .into(),
                });
            }
            secrets[which as usize] = secret;
        }
        Ok(Snapshot { secrets })
    }

    fn snapshot(&self) -> Result<&Snapshot> {
        if let Some(s) = self.snapshot.get() {
            return Ok(s);
        }
        let s = self.read_all()?;
        Ok(self.snapshot.get_or_init(|| s))
    }

    fn parse_state(&self, snapshot: &Snapshot) -> Result<Option<State>> {
        let Some(secret) = snapshot.get(Which::State) else {
            return Ok(None);
        };
        let path = self.path_of(state::FILE);
        let bytes = secret.data.get(state::FILE).ok_or_else(|| {
            Error::state(
                &path,
                "the Secret has no key state.json (was it emptied by hand?)",
            )
        })?;
        if bytes.len() as u64 > state::MAX_BYTES {
            return Err(Error::state(
                &path,
                format!(
                    "it is larger than {} KiB, far more than any state supakeys writes",
                    state::MAX_BYTES >> 10
                ),
            ));
        }
        // A state of schema 2 takes the HS256 mode the chart's files show (see
        // `state::Hs256InFiles`).
        let hs256_in_files = || {
            snapshot
                .get(Which::Files)
                .and_then(|s| s.data.get("jwt_jwks.json"))
                .and_then(|bytes| state::hs256_mode_of_jwt_jwks(bytes))
        };
        State::parse(bytes, &path, &hs256_in_files).map(Some)
    }

    /// The keys a first run adopts: from `SUPAKEYS_KUBERNETES_ADOPT`'s Secret, else from an
    /// apikey Secret that is already there (a hand-made Secret the chart pointed at, or
    /// supakeys' own when its state Secret was lost: its signing key is kept).
    fn adoptable(&self, snapshot: &Snapshot) -> Result<Vec<Adoptable>> {
        let named = match &self.settings.adopt {
            Some(name) => {
                let secret = self.cluster.get(name)?;
                if secret.is_none() {
                    tracing::info!("Secret {name} (SUPAKEYS_KUBERNETES_ADOPT) does not exist");
                }
                secret.map(|s| (name.clone(), s))
            }
            None => None,
        };
        let (name, secret) = match &named {
            Some((name, secret)) => (name.clone(), secret),
            None => match snapshot.get(Which::Apikey) {
                Some(secret) => (self.name(Which::Apikey), secret),
                None => return Ok(Vec::new()),
            },
        };
        let mut adopted = Vec::new();
        for (chart_key, variable) in ADOPTED {
            let key = self.apikey_key(chart_key);
            // The chart renders empty strings for values left unset: nothing to adopt there.
            let Some(bytes) = secret.data.get(key).filter(|b| !b.is_empty()) else {
                continue;
            };
            let value = String::from_utf8(bytes.to_vec()).map_err(|_| {
                Error::invalid(
                    format!("key {key} of Secret {name}"),
                    "is not UTF-8 text",
                    "Fix or remove the key, or unset SUPAKEYS_KUBERNETES_ADOPT.",
                )
            })?;
            adopted.push(Adoptable {
                variable,
                value: Secret::new(value),
                source: format!("Secret {name}, key {key}"),
            });
        }
        if !adopted.is_empty() {
            tracing::info!(
                secret = %name,
                "first run: adopting {} from Secret {name}",
                adopted
                    .iter()
                    .map(|a| a.variable)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(adopted)
    }

    fn apikey_key(&self, chart_key: &str) -> &str {
        let i = CHART_KEYS
            .iter()
            .position(|(k, _)| *k == chart_key)
            .expect("a chart key");
        &self.settings.apikey_keys[i]
    }

    /// The data of the three Secrets for `files`.
    fn desired(&self, files: &[PlannedFile]) -> Result<[Data; 3]> {
        let mut state = Data::new();
        let mut apikey = Data::new();
        let mut out = Data::new();
        for file in files {
            if file.name == state::FILE {
                state.insert(file.name.into(), file.bytes.clone());
                continue;
            }
            out.insert(file.name.into(), file.bytes.clone());
            let Some(stem) = file.name.strip_suffix(".env") else {
                continue;
            };
            let env = env_of(file)?;
            for (name, value) in env.vars() {
                out.insert(
                    format!("{stem}.{name}"),
                    Zeroizing::new(value.as_bytes().to_vec()),
                );
            }
            if file.name == "supabase.env" {
                for (i, (_, variable)) in CHART_KEYS.iter().enumerate() {
                    let value = env.get(variable).unwrap_or_default();
                    apikey.insert(
                        self.settings.apikey_keys[i].clone(),
                        Zeroizing::new(value.as_bytes().to_vec()),
                    );
                }
            }
        }
        Ok([state, apikey, out])
    }

    /// Sends every write of an attempt in `mode`, state first.
    fn send(
        &self,
        snapshot: &Snapshot,
        writes: &[Write],
        mode: Mode,
    ) -> std::result::Result<(), WriteError> {
        for write in writes {
            let name = self.name(write.which);
            let labels = Self::labels(write.which);
            match snapshot.get(write.which) {
                None => self.cluster.create(&name, &labels, &write.data, mode)?,
                Some(existing) => {
                    self.cluster
                        .replace(&name, existing, &labels, &write.data, mode)?
                }
            }
        }
        Ok(())
    }

    /// Refuses writes the API would refuse for reasons a retry cannot fix.
    fn check_writes(&self, snapshot: &Snapshot, writes: &[Write]) -> Result<()> {
        for write in writes {
            let name = self.name(write.which);
            let bytes: usize = write.data.values().map(|v| v.len()).sum();
            if bytes > MAX_DATA_BYTES {
                return Err(Error::KubernetesSecretTooLarge {
                    name,
                    bytes,
                    limit: MAX_DATA_BYTES,
                });
            }
            if let Some(existing) = snapshot.get(write.which) {
                if existing.immutable {
                    return Err(Error::KubernetesSecretUnusable {
                        name,
                        problem: "is immutable (`immutable: true`), so its data cannot change: delete it \
                                  (supakeys creates it again) and run supakeys again"
                            .into(),
                    });
                }
                if existing.kind != "Opaque" {
                    return Err(Error::KubernetesSecretUnusable {
                        name,
                        problem: format!(
                            "has type {}, and a Secret's type cannot change: supakeys writes Opaque \
                             Secrets; delete it or choose another prefix (SUPAKEYS_KUBERNETES_SECRETS)",
                            existing.kind
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// One attempt: `Ok(None)` when a write met a concurrent change.
    fn attempt(
        &mut self,
        plan: &mut dyn FnMut(Loaded) -> Result<Vec<PlannedFile>>,
    ) -> Result<Option<Applied>> {
        let snapshot = self.read_all()?;
        let state = self.parse_state(&snapshot)?;
        let adoptable = if state.is_none() {
            self.adoptable(&snapshot)?
        } else {
            Vec::new()
        };
        let has_kong_file = snapshot
            .get(Which::Files)
            .is_some_and(|s| s.data.contains_key(crate::render::KONG_FILE));
        let files = plan(Loaded {
            state,
            adoptable,
            has_kong_file,
            committed: self.committed,
        })?;
        let desired = self.desired(&files)?;
        let mut writes = Vec::new();
        for (which, data) in WHICH.into_iter().zip(desired) {
            let same = snapshot.get(which).is_some_and(|s| s.data == data);
            if !same {
                writes.push(Write { which, data });
            }
        }
        // The files each write changes, by Secret.
        let mut changes: [Vec<&'static str>; 3] = Default::default();
        for file in &files {
            let which = if file.name == state::FILE {
                Which::State
            } else {
                Which::Files
            };
            let before = snapshot.get(which).and_then(|s| s.data.get(file.name));
            if before.is_none_or(|b| b[..] != file.bytes[..]) {
                changes[which as usize].push(file.name);
            }
        }
        let changed_keys: Vec<String> = match (
            snapshot.get(Which::Apikey),
            writes.iter().find(|w| w.which == Which::Apikey),
        ) {
            (_, None) => Vec::new(),
            (None, Some(w)) => w.data.keys().cloned().collect(),
            (Some(old), Some(w)) => w
                .data
                .iter()
                .filter(|(k, v)| old.data.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .collect(),
        };
        if writes.is_empty() {
            return Ok(Some(self.applied(&files)));
        }
        self.check_writes(&snapshot, &writes)?;
        // Every write as a dry run first: what RBAC, admission or validation refuses is
        // refused before anything is written.
        if let Err(e) = self.send(&snapshot, &writes, Mode::DryRun) {
            return self.retry_or_fail(e);
        }
        for write in &writes {
            if let Err(e) = self.send(&snapshot, std::slice::from_ref(write), Mode::Write) {
                return self.retry_or_fail(e);
            }
            tracing::debug!(secret = %self.name(write.which), "written");
            for name in &changes[write.which as usize] {
                if !self.written.contains(name) {
                    self.written.push(name);
                }
            }
            match write.which {
                Which::State => self.committed = true,
                Which::Apikey => self.changed_keys.extend(changed_keys.iter().cloned()),
                Which::Files => self.files_changed = true,
            }
        }
        Ok(Some(self.applied(&files)))
    }
}

impl KubeStore {
    fn applied(&self, files: &[PlannedFile]) -> Applied {
        let mut applied = Applied::default();
        for file in files {
            if self.written.contains(&file.name) {
                applied.written.push(file.name);
            } else {
                applied.unchanged.push(file.name);
            }
        }
        applied
    }

    fn retry_or_fail(&self, e: WriteError) -> Result<Option<Applied>> {
        match e {
            WriteError::Conflict(what) => {
                tracing::info!("a concurrent change ({what}): reading the Secrets again");
                Ok(None)
            }
            WriteError::Failed(e) => Err(e),
        }
    }
}

/// The compose services of upstream's stack that doctor's hints name.
const COMPOSE_SERVICES: [&str; 7] = [
    "auth",
    "rest",
    "realtime",
    "storage",
    "functions",
    "studio",
    "api-gw",
];

/// Compose commands become kubectl commands on the chart's Deployments (the gateway is
/// the chart's Kong), and the compose-run doctor becomes the doctor Job. The chart's
/// services read the Secrets as environment variables, so every reload is a restart.
fn translate_with(settings: &Settings, hint: &str) -> String {
    let deployment = |service: &str| {
        let service = if service == "api-gw" { "kong" } else { service };
        format!("deployment/{}", deployment(&settings.release, service))
    };
    // A service that never read its keys: here the chart's values do not point it at
    // supakeys' Secrets.
    if hint.starts_with(crate::doctor::LAYER_FIX) {
        return "install the release with the values of deploy/kubernetes/values.yaml (secret.apikey.secretRef: supakeys-apikey), then restart its Deployments".to_owned();
    }
    let mut out = hint
        .replace(
            crate::doctor::WITHOUT_LAYER,
            "its Deployment does not take its keys from supakeys' Secrets (the chart's secret.apikey values)",
        )
        .replace(
            "`docker compose run --rm supakeys doctor`",
            "the doctor Job, deploy/kubernetes/jobs/doctor.yaml",
        )
        .replace("the compose network", "the cluster")
        .replace(
            "psql -c \"NOTIFY pgrst, 'reload config'\" (or restart rest)",
            "docker compose restart rest",
        );
    for (compose, kubectl) in [
        ("docker compose restart ", "kubectl rollout restart "),
        ("docker compose logs ", "kubectl logs "),
        ("docker compose ps ", "kubectl get "),
    ] {
        while let Some(at) = out.find(compose) {
            // The compose services named after the command, up to the first other word.
            let rest = &out[at + compose.len()..];
            let mut end = 0;
            let mut services = Vec::new();
            for word in rest.split(' ') {
                let name = word.trim_end_matches(['`', ',', ';', ')', '.']);
                if !COMPOSE_SERVICES.contains(&name) {
                    break;
                }
                services.push(deployment(name));
                end += name.len();
                if name.len() < word.len() {
                    break;
                }
                end += 1;
            }
            let end = end.min(rest.len());
            let joined = services.join(" ");
            let sep = if rest[..end].ends_with(' ') { " " } else { "" };
            out = format!("{}{kubectl}{joined}{sep}{}", &out[..at], &rest[end..]);
        }
    }
    out.replace(
        "docker compose logs",
        "kubectl logs (of the chart's Deployments)",
    )
}

/// The variables of a rendered env file.
fn env_of(file: &PlannedFile) -> Result<crate::envfile::DotEnv> {
    crate::envfile::DotEnv::parse_bytes(&file.bytes, &|_| crate::envfile::Lookup::Unset).map_err(
        |r| Error::EnvFileSyntax {
            path: file.name.into(),
            line: r.line,
            problem: r.problem,
        },
    )
}

impl Store for KubeStore {
    fn location(&self) -> String {
        format!(
            "Secrets {}-state, {}-apikey, {}-files in namespace {}",
            self.settings.prefix,
            self.settings.prefix,
            self.settings.prefix,
            self.cluster.namespace
        )
    }

    fn path_of(&self, name: &str) -> PathBuf {
        let which = if name == state::FILE {
            Which::State
        } else {
            Which::Files
        };
        PathBuf::from(format!(
            "secret/{} (namespace {}) key {name}",
            self.name(which),
            self.cluster.namespace
        ))
    }

    fn update(
        &mut self,
        plan: &mut dyn FnMut(Loaded) -> Result<Vec<PlannedFile>>,
    ) -> Result<Applied> {
        for attempt in 1..=ATTEMPTS {
            if let Some(applied) = self.attempt(plan)? {
                return Ok(applied);
            }
            if attempt < ATTEMPTS {
                // A short, growing, jittered pause, so that two writers stop meeting.
                let mut jitter = [0u8; 1];
                crate::fill_random(&mut jitter)?;
                let ms = (20u64 << attempt) + u64::from(jitter[0]) / 4;
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
        Err(Error::KubernetesConflicts {
            attempts: ATTEMPTS,
            location: self.location(),
        })
    }

    fn state(&self) -> Result<Option<State>> {
        self.parse_state(self.snapshot()?)
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let which = if name == state::FILE {
            Which::State
        } else {
            Which::Files
        };
        Ok(self
            .snapshot()?
            .get(which)
            .and_then(|s| s.data.get(name))
            .map(|b| b.to_vec()))
    }

    fn inspect(&self) -> Result<Vec<String>> {
        let snapshot = self.snapshot()?;
        let mut problems = Vec::new();
        let Some(files) = snapshot.get(Which::Files) else {
            problems.push(format!(
                "Secret {} is missing; run `supakeys init`",
                self.name(Which::Files)
            ));
            return Ok(problems);
        };
        for (name, _) in crate::render::FILES {
            if name != state::FILE
                && name != crate::render::KONG_FILE
                && !files.data.contains_key(name)
            {
                problems.push(format!(
                    "{name} is missing from Secret {}",
                    self.name(Which::Files)
                ));
            }
        }
        let apikey_name = self.name(Which::Apikey);
        let Some(apikey) = snapshot.get(Which::Apikey) else {
            problems.push(format!(
                "Secret {apikey_name} (the chart's secret.apikey.secretRef) is missing; run `supakeys init`"
            ));
            return Ok(problems);
        };
        let env = files.data.get("supabase.env").and_then(|b| {
            crate::envfile::DotEnv::parse_bytes(b, &|_| crate::envfile::Lookup::Unset).ok()
        });
        for (i, (_, variable)) in CHART_KEYS.iter().enumerate() {
            let key = &self.settings.apikey_keys[i];
            let expected = env.as_ref().and_then(|e| e.get(variable));
            match (apikey.data.get(key), expected) {
                (None, _) => problems.push(format!("Secret {apikey_name} has no key {key}")),
                (Some(v), Some(e)) if v[..] != *e.as_bytes() => problems.push(format!(
                    "key {key} of Secret {apikey_name} differs from {variable} of supabase.env; run `supakeys init`"
                )),
                _ => {}
            }
        }
        Ok(problems)
    }

    fn translate(&self, hint: &str) -> String {
        translate_with(&self.settings, hint)
    }

    /// The restart lines follow the apikey keys this run changed (the chart's Deployments
    /// read keys, not files).
    fn after_change(&self, _applied: &Applied) -> String {
        let mut services: Vec<&str> = Vec::new();
        for (service, _, key) in CHART_READERS {
            if self.changed_keys.iter().any(|k| k == self.apikey_key(key))
                && !services.contains(&service)
            {
                services.push(service);
            }
        }
        let mut lines: Vec<String> = services
            .iter()
            .map(|s| {
                format!(
                    "  kubectl rollout restart deployment/{}",
                    deployment(&self.settings.release, s)
                )
            })
            .collect();
        if self.files_changed {
            lines.push(format!(
                "  and every Deployment you wired to Secret {} (env or volume)",
                self.name(Which::Files)
            ));
        }
        if lines.is_empty() {
            return "No Secret changed: nothing to restart.\n".to_owned();
        }
        format!(
            "Secrets changed. To apply them (the chart's Deployments of release {}):\n{}\nthen run doctor \
             (kubectl create -f deploy/kubernetes/jobs/doctor.yaml) to check that every service uses them.\n",
            self.settings.release,
            lines.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_hints_become_kubectl_commands_on_the_charts_deployments() {
        let store = |release: &str| Settings {
            host: "10.0.0.1".into(),
            port: 443,
            serviceaccount: crate::chart::SERVICEACCOUNT_DIR.into(),
            prefix: "supakeys".into(),
            apikey_keys: CHART_KEYS.map(|(k, _)| k.to_owned()),
            adopt: None,
            release: release.into(),
        };
        let translate = |hint: &str| translate_with(&store("supabase"), hint);
        assert_eq!(
            translate("check kong.yml, then docker compose restart api-gw so that it reloads"),
            "check kong.yml, then kubectl rollout restart deployment/supabase-supabase-kong so that it reloads"
        );
        assert_eq!(
            translate("`docker compose ps api-gw`; or run doctor inside the compose network"),
            "`kubectl get deployment/supabase-supabase-kong`; or run doctor inside the cluster"
        );
        assert_eq!(
            translate("docker compose restart storage"),
            "kubectl rollout restart deployment/supabase-supabase-storage"
        );
        // A service that never read its keys: the chart's values, not a compose layer.
        assert_eq!(
            translate(&format!(
                "auth runs without GOTRUE_JWT_KEYS, so it never loaded /keys/auth.env: {}",
                crate::doctor::WITHOUT_LAYER
            )),
            "auth runs without GOTRUE_JWT_KEYS, so it never loaded /keys/auth.env: its Deployment does not take its keys from supakeys' Secrets (the chart's secret.apikey values)"
        );
        assert!(
            translate(&format!("{}, then `up -d`: …", crate::doctor::LAYER_FIX)).starts_with(
                "install the release with the values of deploy/kubernetes/values.yaml"
            )
        );
        assert_eq!(
            translate("docker compose restart api-gw auth"),
            "kubectl rollout restart deployment/supabase-supabase-kong deployment/supabase-supabase-auth"
        );
        assert_eq!(
            translate("read `docker compose logs auth`, or pass --access-token"),
            "read `kubectl logs deployment/supabase-supabase-auth`, or pass --access-token"
        );
        assert_eq!(
            translate("psql -c \"NOTIFY pgrst, 'reload config'\" (or restart rest)"),
            "kubectl rollout restart deployment/supabase-supabase-rest"
        );
        assert_eq!(
            translate(
                "give doctor the environment of init (`docker compose run --rm supakeys doctor`)"
            ),
            "give doctor the environment of init (the doctor Job, deploy/kubernetes/jobs/doctor.yaml)"
        );
    }

    // A Secret stays under the API's limit, and readable: base64 makes 4 bytes of 3, and
    // the rest of the object fits in what is left.
    const _: () = assert!(MAX_DATA_BYTES <= 1 << 20);
    const _: () = assert!(MAX_DATA_BYTES / 3 * 4 + (64 << 10) <= crate::http::MAX_BODY);
}
