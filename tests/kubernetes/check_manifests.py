#!/usr/bin/env python3
"""Checks deploy/kubernetes as Kubernetes and Helm process it, and against the chart.

- Every manifest validates against the strict JSON schemas of Kubernetes 1.37.0
  (kubernetes-validate, whose wheel carries the schemas, so nothing is downloaded); the
  validator is first shown to reject a broken copy, so that a pass means something.
- Helm hooks (helm.sh "Chart Hooks"): known hook names, weights given as strings of
  integers, known delete policies; the RBAC hooks sort before the Job (lower weight), so
  the ServiceAccount and Role exist when the Job starts; no policy deletes a succeeded Job
  before its log can be read; both pre-install and pre-upgrade.
- Every Job runs as non-root with a read-only root filesystem, no privilege escalation, no
  capabilities, the RuntimeDefault seccomp profile, and supakeys' ServiceAccount, which the
  RoleBinding binds to the Role; the Role names supakeys' three Secrets and the adopted one.
- The names and keys match chart supabase 0.7.2 (tests/kubernetes/chart-0.7.2.json, facts
  restated with their sources): values.yaml points secret.apikey.secretRef at supakeys'
  apikey Secret and secret.jwt.secretRef at the Secret the Jobs read; the Jobs read the
  jwt Secret's keys (secret, anonKey, serviceKey) as JWT_SECRET, ANON_KEY,
  SERVICE_ROLE_KEY; the restart lines and doctor's URL name the chart's Deployments and
  Kong Service for the release the Jobs name.

Prints `ok - ...`/`not ok - ...` per check and `manifests: N passed, M failed`.
"""

import copy
import glob
import json
import os
import re
import sys

import kubernetes_validate
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy", "kubernetes")
KUBERNETES = "1.37.0"
HOOKS = {"pre-install", "post-install", "pre-delete", "post-delete", "pre-upgrade",
         "post-upgrade", "pre-rollback", "post-rollback", "test"}
DELETE_POLICIES = {"before-hook-creation", "hook-succeeded", "hook-failed"}
PREFIX = "supakeys"
SECRETS = [f"{PREFIX}-state", f"{PREFIX}-apikey", f"{PREFIX}-files"]

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name}" + (f": {detail}" if detail else ""))


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


facts = json.load(open(os.path.join(os.path.dirname(__file__), "chart-0.7.2.json")))
manifests = sorted(glob.glob(os.path.join(DEPLOY, "templates", "*.yaml"))
                   + glob.glob(os.path.join(DEPLOY, "jobs", "*.yaml"))
                   + glob.glob(os.path.join(DEPLOY, "optional", "*.yaml")))
docs = [(os.path.relpath(p, DEPLOY), d) for p in manifests for d in load(p)]


def validates(doc):
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        return None
    except Exception as e:  # the library's ValidationError and SchemaNotFoundError
        return str(e).splitlines()[0]


# The validator is a check only if it can fail: a misspelt field and a wrong type.
job = next(d for p, d in docs if p == "templates/init-job.yaml")
broken = copy.deepcopy(job)
broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
check("kubernetes-validate rejects an unknown field (strict)", validates(broken) is not None)
broken = copy.deepcopy(job)
broken["spec"]["backoffLimit"] = "two"
check("kubernetes-validate rejects a wrong type", validates(broken) is not None)

for path, doc in docs:
    problem = validates(doc)
    name = doc.get("metadata", {}).get("name") or doc.get("metadata", {}).get("generateName")
    check(f"{path}: {doc['kind']} {name} validates against Kubernetes {KUBERNETES}",
          problem is None, problem)

# ---------------------------------------------------------------- Helm hooks
hooked = [(p, d) for p, d in docs if p.startswith("templates/")]
weights = {}
for path, doc in hooked:
    ann = doc["metadata"].get("annotations", {})
    hooks = set(ann.get("helm.sh/hook", "").split(","))
    weight = ann.get("helm.sh/hook-weight")
    policies = set(filter(None, ann.get("helm.sh/hook-delete-policy", "").split(",")))
    kind = doc["kind"]
    check(f"{path}: {kind} is a pre-install and pre-upgrade hook",
          {"pre-install", "pre-upgrade"} <= hooks and hooks <= HOOKS, str(hooks))
    check(f"{path}: {kind} hook weight is a string of an integer",
          isinstance(weight, str) and re.fullmatch(r"-?\d+", weight) is not None, repr(weight))
    check(f"{path}: {kind} delete policy is known and keeps a succeeded Job's log",
          policies <= DELETE_POLICIES and "hook-succeeded" not in policies, str(policies))
    weights[kind] = int(weight) if isinstance(weight, str) and re.fullmatch(r"-?\d+", weight) else 0
check("the ServiceAccount, Role and RoleBinding hooks run before the Job",
      all(weights[k] < weights["Job"] for k in ("ServiceAccount", "Role", "RoleBinding")), str(weights))

# ---------------------------------------------------------------- RBAC and Jobs
by_kind = {}
for path, doc in docs:
    by_kind.setdefault(doc["kind"], []).append((path, doc))
sa = by_kind["ServiceAccount"][0][1]["metadata"]["name"]
role = by_kind["Role"][0][1]
binding = by_kind["RoleBinding"][0][1]
check("the RoleBinding binds supakeys' ServiceAccount to its Role",
      binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
      and binding["subjects"] == [{"kind": "ServiceAccount", "name": sa}])
rules = role["rules"]
named = {n for r in rules if {"get", "update"} <= set(r["verbs"]) for n in r.get("resourceNames", [])}
check("the Role lets supakeys get and update its three Secrets, by name", set(SECRETS) <= named, str(named))
check("every Role rule is about secrets of the core group",
      all(r["apiGroups"] == [""] and r["resources"] == ["secrets"] for r in rules))
check("only create has no resourceNames (RBAC cannot limit it by name)",
      all(r.get("resourceNames") or r["verbs"] == ["create"] for r in rules))

jobs = by_kind["Job"]
release = None
for path, doc in jobs:
    spec = doc["spec"]["template"]["spec"]
    container = spec["containers"][0]
    sc, psc = container.get("securityContext", {}), spec.get("securityContext", {})
    check(f"{path}: runs as supakeys' ServiceAccount with its token mounted",
          spec.get("serviceAccountName") == sa and spec.get("automountServiceAccountToken") is True)
    check(f"{path}: non-root, read-only root, no escalation, no capabilities, RuntimeDefault seccomp",
          psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0
          and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
          and sc.get("capabilities", {}).get("drop") == ["ALL"]
          and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    env = {e["name"]: e for e in container["env"]}
    check(f"{path}: SUPAKEYS_STORE=kubernetes", env.get("SUPAKEYS_STORE", {}).get("value") == "kubernetes")
    release = env.get("SUPAKEYS_KUBERNETES_RELEASE", {}).get("value")
    check(f"{path}: names the release of the chart", release == "supabase", str(release))
    jwt_keys = dict(zip(["JWT_SECRET", "ANON_KEY", "SERVICE_ROLE_KEY"], ["secret", "anonKey", "serviceKey"]))
    refs = {n: env[n]["valueFrom"]["secretKeyRef"] for n in jwt_keys if n in env}
    check(f"{path}: reads JWT_SECRET, ANON_KEY, SERVICE_ROLE_KEY from the jwt Secret's keys",
          set(refs) == set(jwt_keys) and all(refs[n]["key"] == k for n, k in jwt_keys.items())
          and set(jwt_keys.values()) <= set(facts["jwt_secret"]["keys"]), str(refs))
    jwt_names = {r["name"] for r in refs.values()}
    values = load(os.path.join(DEPLOY, "values.yaml"))[0]["supabase"]["secret"]
    check(f"{path}: the jwt Secret it reads is the one values.yaml gives the chart",
          jwt_names == {values["jwt"]["secretRef"]}, f"{jwt_names} vs {values['jwt']['secretRef']}")

values = load(os.path.join(DEPLOY, "values.yaml"))[0]["supabase"]["secret"]
check("values.yaml points secret.apikey.secretRef at supakeys' apikey Secret",
      values["apikey"]["secretRef"] == f"{PREFIX}-apikey")
check("values.yaml keeps the chart's apikey key names (no secretRefKey: supakeys writes the defaults)",
      "secretRefKey" not in values["apikey"])

chart = load(os.path.join(DEPLOY, "Chart.yaml"))[0]
dep = chart["dependencies"][0]
check("Chart.yaml depends on chart supabase 0.7.2 from the community repository",
      chart["apiVersion"] == "v2" and dep == {"name": facts["chart"]["name"], "version": facts["chart"]["version"],
                                            "repository": facts["chart"]["repository"]}, str(dep))


def deployment(service):
    """The chart's Deployment name (facts: fullname)."""
    name = f"supabase-{service}"
    full = release if name in release else f"{release}-{name}"
    return full[:63].rstrip("-")


services = {r["service"] for r in facts["readers"]}
for path in glob.glob(os.path.join(DEPLOY, "jobs", "*.yaml")):
    text = open(path).read()
    named_deployments = re.findall(r"kubectl rollout restart deployment/(\S+)", text)
    known = {deployment(s) for s in services}
    check(f"{os.path.relpath(path, DEPLOY)}: restart lines name the chart's Deployments",
          all(d in known for d in named_deployments), str(named_deployments))

doctor = next(d for p, d in jobs if p == "jobs/doctor.yaml")
url = {e["name"]: e.get("value") for e in doctor["spec"]["template"]["spec"]["containers"][0]["env"]}["SUPAKEYS_DOCTOR_URL"]
check("doctor's URL is the chart's Kong Service", url == f"http://{deployment('kong')}:8000", url)
init = next(d for p, d in jobs if p == "templates/init-job.yaml")
adopt = {e["name"]: e.get("value") for e in init["spec"]["template"]["spec"]["containers"][0]["env"]}["SUPAKEYS_KUBERNETES_ADOPT"]
full = release if "supabase" in release else f"{release}-supabase"
check("the adopted Secret is the chart's apikey Secret of that release, and the Role may get it",
      adopt == facts["apikey_secret"]["default_name"].replace("FULLNAME", full)
      and any(adopt in r.get("resourceNames", []) and "get" in r["verbs"] for r in rules), adopt)

print(f"manifests: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
