//! The Kubernetes API as supakeys uses it: four typed requests on Secrets (get, create,
//! replace, each write optionally as a dry run) over the crate's own HTTP client, with the
//! in-cluster configuration every pod has. The only code of the Kubernetes store that speaks
//! HTTP.
//!
//! In-cluster configuration, as client-go's `rest.InClusterConfig` reads it
//! (kubernetes/kubernetes `staging/src/k8s.io/client-go/rest/config.go`) and as
//! kubernetes.io "Accessing the Kubernetes API from a Pod" describes it: the API server at
//! `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, verified against
//! `ca.crt` of the service account directory (and the host as server name: the API
//! server's certificate names the service IP), the namespace in its `namespace` file, and
//! a bearer token in its `token` file. Projected tokens rotate (the kubelet renews them
//! before they expire, kubernetes.io "Configure Service Accounts for Pods"), so the token
//! file is read again for every request; client-go re-reads it once a minute
//! (`transport/token_source.go`).

use crate::config::KubernetesSettings as Settings;
use crate::error::{Error, Result};
use crate::http::{Client, Method, Request, Response, Roots, Scheme, Target};
use crate::secret::Secret;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Service account files are small (a token is about 1 KiB, a CA bundle a few).
const MAX_FILE_BYTES: u64 = 256 << 10;

/// The API server of the pod's cluster.
pub struct Cluster {
    /// The API server, trusted through `ca.crt`.
    client: Client,
    token: PathBuf,
    pub namespace: String,
}

/// A Secret as the API server returned it.
pub struct SecretObject {
    /// The whole object, sent back (with new data) on replace so that fields supakeys does
    /// not manage (annotations, owner references) stay.
    object: Value,
    pub resource_version: String,
    /// `data`, decoded.
    pub data: BTreeMap<String, Zeroizing<Vec<u8>>>,
    pub immutable: bool,
    pub kind: String,
    /// The `app.kubernetes.io/managed-by` label.
    pub managed_by: Option<String>,
}

impl std::fmt::Debug for SecretObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretObject")
            .field("resource_version", &self.resource_version)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a write did not happen.
pub enum WriteError {
    /// `409` (Conflict on a stale resourceVersion, AlreadyExists on create) or `404` on a
    /// replace (deleted since it was read): read again and plan again.
    Conflict(String),
    Failed(Error),
}

impl From<Error> for WriteError {
    fn from(e: Error) -> WriteError {
        WriteError::Failed(e)
    }
}

/// Whether a write is only checked (`dryRun=All`: authorized, admitted and validated like
/// the real one, never persisted; kubernetes.io "API concepts", Dry-run) or made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Write,
}

/// The text of a server's message, safe to print: one line, bounded.
fn printable(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    line.trim().to_owned()
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    crate::input::read_input(path, MAX_FILE_BYTES).map_err(|problem| Error::KubernetesApi {
        action: "read the service account".into(),
        problem: format!(
            "{} {problem}; run supakeys in a pod whose ServiceAccount token is mounted \
             (automountServiceAccountToken), or set SUPAKEYS_KUBERNETES_SERVICEACCOUNT",
            path.display()
        ),
    })
}

impl Cluster {
    /// Reads the in-cluster configuration: namespace and CA now, the token at each request.
    pub fn connect(settings: &Settings) -> Result<Cluster> {
        let dir = &settings.serviceaccount;
        let namespace = String::from_utf8(read_file(&dir.join("namespace"))?)
            .ok()
            .map(|n| n.trim().to_owned())
            .filter(|n| crate::chart::is_label(n))
            .ok_or_else(|| Error::KubernetesApi {
                action: "read the service account".into(),
                problem: format!(
                    "{} does not hold a namespace name",
                    dir.join("namespace").display()
                ),
            })?;
        let ca = dir.join("ca.crt");
        let roots = Roots::from_pem(&read_file(&ca)?).map_err(|problem| Error::KubernetesApi {
            action: "read the service account".into(),
            problem: format!("{} {problem}", ca.display()),
        })?;
        let target = Target {
            scheme: Scheme::Https,
            host: settings.host.clone(),
            port: settings.port,
            base_path: String::new(),
        };
        let client = Client::new(&target, roots, TIMEOUT).map_err(|e| Error::KubernetesApi {
            action: "reach the API server".into(),
            problem: format!("{target} ({e})"),
        })?;
        let cluster = Cluster {
            client,
            token: dir.join("token"),
            namespace,
        };
        // A missing token is reported now, before anything is read or planned.
        cluster.bearer()?;
        Ok(cluster)
    }

    /// The token as the kubelet keeps it now.
    fn bearer(&self) -> Result<Secret> {
        let bytes = Zeroizing::new(read_file(&self.token)?);
        let text = std::str::from_utf8(&bytes).unwrap_or_default().trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::KubernetesApi {
                action: "read the service account".into(),
                problem: format!("{} does not hold a token", self.token.display()),
            });
        }
        Ok(Secret::new(format!("Bearer {text}")))
    }

    /// The collection's path, or the named Secret's.
    fn path(&self, name: Option<&str>) -> String {
        match name {
            None => format!("/api/v1/namespaces/{}/secrets", self.namespace),
            Some(name) => format!("/api/v1/namespaces/{}/secrets/{name}", self.namespace),
        }
    }

    /// A write's path: with `?dryRun=All` for a dry run.
    fn write_path(&self, name: Option<&str>, mode: Mode) -> String {
        match mode {
            Mode::DryRun => format!("{}?dryRun=All", self.path(name)),
            Mode::Write => self.path(name),
        }
    }

    fn send(&self, request: Request, action: &str) -> Result<Response> {
        let request = request.header("Authorization", self.bearer()?.expose());
        self.client
            .send(&request)
            .map_err(|e| Error::KubernetesApi {
                action: action.to_owned(),
                problem: format!("{} ({e})", self.client.target()),
            })
    }

    /// The error for an answer that is not a success, from its `Status` body (apimachinery
    /// `pkg/api/errors/errors.go`: `code`, `reason`, `message`).
    fn failure(&self, response: &Response, verb: &'static str, name: &str, action: &str) -> Error {
        let status = response.json().unwrap_or(Value::Null);
        let reason = status["reason"].as_str().unwrap_or_default();
        let message = status["message"].as_str().unwrap_or_default();
        match response.status {
            401 => Error::KubernetesUnauthorized {
                action: action.to_owned(),
                token: self.token.clone(),
            },
            403 => Error::KubernetesForbidden {
                verb,
                name: (verb != "create").then(|| name.to_owned()),
                namespace: self.namespace.clone(),
            },
            code => Error::KubernetesApi {
                action: action.to_owned(),
                problem: format!(
                    "the API server answered {code} {}: {}",
                    printable(reason),
                    printable(message)
                ),
            },
        }
    }

    /// Reads a Secret; `None` when there is none of that name.
    pub fn get(&self, name: &str) -> Result<Option<SecretObject>> {
        let action = format!("get secret {name} in namespace {}", self.namespace);
        let response = self.send(Request::get(self.path(Some(name))), &action)?;
        match response.status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.failure(&response, "get", name, &action)),
        }
        let body = Zeroizing::new(response.body);
        let object: Value = serde_json::from_slice(&body).map_err(|_| Error::KubernetesApi {
            action: action.clone(),
            problem: "the answer is not JSON".into(),
        })?;
        parse_secret(object)
            .map(Some)
            .map_err(|problem| Error::KubernetesApi { action, problem })
    }

    /// Creates the Secret `name` with `labels` and `data`. It must not exist yet: one that
    /// appeared since it was read is `409 AlreadyExists`, a [`WriteError::Conflict`].
    pub fn create(
        &self,
        name: &str,
        labels: &Value,
        data: &BTreeMap<String, Zeroizing<Vec<u8>>>,
        mode: Mode,
    ) -> std::result::Result<(), WriteError> {
        let object = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": name, "labels": labels },
            "type": "Opaque",
            "data": encode(data),
        });
        let body = Zeroizing::new(serde_json::to_vec(&object).expect("JSON serializes"));
        let action = format!("create secret {name} in namespace {}", self.namespace);
        let response = self.send(
            Request::new(Method::Post, self.write_path(None, mode)).json(&body),
            &action,
        )?;
        self.written(&response, "create", name, &action)
    }

    /// Replaces `existing` (named `name`) with `data` and `labels` added, carrying the
    /// resourceVersion it was read at: a change since then is `409 Conflict`.
    pub fn replace(
        &self,
        name: &str,
        existing: &SecretObject,
        labels: &Value,
        data: &BTreeMap<String, Zeroizing<Vec<u8>>>,
        mode: Mode,
    ) -> std::result::Result<(), WriteError> {
        let mut object = existing.object.clone();
        object["data"] = encode(data);
        if let Some(map) = object.as_object_mut() {
            map.remove("stringData");
        }
        let metadata = &mut object["metadata"];
        metadata["resourceVersion"] = Value::String(existing.resource_version.clone());
        if !metadata["labels"].is_object() {
            metadata["labels"] = json!({});
        }
        for (key, value) in labels.as_object().into_iter().flatten() {
            metadata["labels"][key] = value.clone();
        }
        let body = Zeroizing::new(serde_json::to_vec(&object).expect("JSON serializes"));
        let action = format!("update secret {name} in namespace {}", self.namespace);
        let response = self.send(
            Request::new(Method::Put, self.write_path(Some(name), mode)).json(&body),
            &action,
        )?;
        self.written(&response, "update", name, &action)
    }

    fn written(
        &self,
        response: &Response,
        verb: &'static str,
        name: &str,
        action: &str,
    ) -> std::result::Result<(), WriteError> {
        match response.status {
            200..=299 => Ok(()),
            // A replaced Secret deleted since it was read is gone, not a missing namespace.
            409 => Err(WriteError::Conflict(self.reason(response, verb, name))),
            404 if verb == "update" => Err(WriteError::Conflict(self.reason(response, verb, name))),
            _ => Err(WriteError::Failed(
                self.failure(response, verb, name, action),
            )),
        }
    }

    fn reason(&self, response: &Response, verb: &str, name: &str) -> String {
        let reason = response
            .json()
            .and_then(|s| s["reason"].as_str().map(printable))
            .unwrap_or_else(|| response.status.to_string());
        format!("{verb} {name}: {} {reason}", response.status)
    }
}

fn encode(data: &BTreeMap<String, Zeroizing<Vec<u8>>>) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    Value::Object(
        data.iter()
            .map(|(k, v)| (k.clone(), Value::String(engine.encode(v.as_slice()))))
            .collect(),
    )
}

/// Reads the fields supakeys needs from a Secret object. `data` values are standard base64
/// (the API's encoding of `[]byte`); `stringData` is write-only and never returned.
fn parse_secret(object: Value) -> std::result::Result<SecretObject, String> {
    if object["kind"] != "Secret" {
        return Err("the answer is not a Secret".into());
    }
    let resource_version = object["metadata"]["resourceVersion"]
        .as_str()
        .filter(|v| !v.is_empty())
        .ok_or("the Secret has no metadata.resourceVersion")?
        .to_owned();
    let engine = base64::engine::general_purpose::STANDARD;
    let mut data = BTreeMap::new();
    for (key, value) in object["data"].as_object().into_iter().flatten() {
        let bytes = value
            .as_str()
            .and_then(|v| engine.decode(v).ok())
            .ok_or_else(|| format!("the value of key {} is not base64", printable(key)))?;
        data.insert(key.clone(), Zeroizing::new(bytes));
    }
    Ok(SecretObject {
        resource_version,
        data,
        immutable: object["immutable"] == true,
        kind: object["type"].as_str().unwrap_or("Opaque").to_owned(),
        managed_by: object["metadata"]["labels"]["app.kubernetes.io/managed-by"]
            .as_str()
            .map(printable),
        object,
    })
}
