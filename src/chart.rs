//! What supakeys knows of Kubernetes and of the supabase-kubernetes chart (`supabase` 0.7.2):
//! the names and keys the API accepts, where the kubelet mounts the service account, the
//! keys of the chart's apikey Secret and which of the chart's Deployments reads which, and
//! how the chart names its Deployments. Facts only; `kubernetes` keeps the Secrets.

/// Where the kubelet mounts the service account's token, CA and namespace.
pub const SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The longest prefix: the longest suffix (`-apikey`) keeps names within 63 characters.
pub const MAX_PREFIX: usize = 56;
/// The keys of the chart's apikey Secret (chart `supabase` 0.7.2,
/// `templates/secret/apikey.yaml`: the defaults of `secret.apikey.secretRefKey`) and the
/// variable of `supabase.env` each one holds.
pub const CHART_KEYS: [(&str, &str); 6] = [
    ("publishableKey", "SUPABASE_PUBLISHABLE_KEY"),
    ("secretKey", "SUPABASE_SECRET_KEY"),
    ("anonKeyAsymmetric", "ANON_KEY_ASYMMETRIC"),
    ("serviceRoleKeyAsymmetric", "SERVICE_ROLE_KEY_ASYMMETRIC"),
    ("jwtKeys", "JWT_KEYS"),
    ("jwtJwks", "JWT_JWKS"),
];

/// Which of the chart's Deployments read which key of the apikey Secret, and as what
/// (chart `supabase` 0.7.2, `templates/{auth,rest,realtime,storage,kong,functions}/deployment.yaml`):
/// they read it once, at start, so a change needs `kubectl rollout restart`.
pub const CHART_READERS: [(&str, &str, &str); 10] = [
    ("auth", "GOTRUE_JWT_KEYS", "jwtKeys"),
    ("rest", "PGRST_JWT_SECRET", "jwtJwks"),
    ("realtime", "API_JWT_JWKS", "jwtJwks"),
    ("storage", "JWT_JWKS", "jwtJwks"),
    ("kong", "SUPABASE_PUBLISHABLE_KEY", "publishableKey"),
    ("kong", "SUPABASE_SECRET_KEY", "secretKey"),
    ("kong", "ANON_KEY_ASYMMETRIC", "anonKeyAsymmetric"),
    (
        "kong",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
        "serviceRoleKeyAsymmetric",
    ),
    ("functions", "SUPABASE_PUBLISHABLE_KEY", "publishableKey"),
    ("functions", "SUPABASE_SECRET_KEY", "secretKey"),
];

/// A DNS-1123 subdomain as Secret names must be (`metadata.name`), at most 253 characters.
pub fn is_name(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_label_part)
}

fn is_label_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A DNS-1123 label (a namespace name), at most 63 characters.
pub fn is_label(name: &str) -> bool {
    name.len() <= 63 && is_label_part(name)
}

/// A key of a Secret's data (apimachinery `IsConfigMapKey`): 1-253 characters of
/// `A-Z a-z 0-9 - _ .`, and not `.` or `..` or starting with `..`.
pub fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && key != "."
        && !key.starts_with("..")
}

/// The chart's name for a Deployment of `service` in `release` (its `supabase.<svc>.fullname`
/// helper without overrides: the release name when it contains `supabase-<svc>`, else
/// `<release>-supabase-<svc>`, cut to 63 characters).
pub fn deployment(release: &str, service: &str) -> String {
    let name = format!("supabase-{service}");
    let full = if release.contains(&name) {
        release.to_owned()
    } else {
        format!("{release}-{name}")
    };
    full.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_names_follow_the_charts_fullname_helper() {
        assert_eq!(deployment("supabase", "auth"), "supabase-supabase-auth");
        assert_eq!(deployment("demo", "kong"), "demo-supabase-kong");
        assert_eq!(
            deployment("my-supabase-auth", "auth"),
            "my-supabase-auth",
            "a release containing supabase-auth is the name itself"
        );
        let long = "r".repeat(60);
        assert_eq!(deployment(&long, "auth").len(), 63);
    }

    #[test]
    fn names_and_keys_follow_the_api_rules() {
        assert!(is_name("supakeys-state"));
        assert!(is_name("a.b-c"));
        assert!(!is_name("Supakeys"));
        assert!(!is_name("-a"));
        assert!(!is_name(""));
        assert!(is_key("storage.AUTH_JWT_SECRET"));
        assert!(is_key("state.json"));
        assert!(!is_key(".."));
        assert!(!is_key("..x"));
        assert!(!is_key("a/b"));
        assert!(is_label("default"));
        assert!(!is_label(&"a".repeat(64)));
    }
}
