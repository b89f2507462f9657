//! Pod Security admission, as the API server's built-in plugin enforces it: a
//! namespace labelled `pod-security.kubernetes.io/enforce: baseline` (or
//! `restricted`) refuses pods, and new ephemeral containers, whose spec violates that
//! level, with the plugin's 403 `Status` and wording (`pods "x" is forbidden: violates
//! PodSecurity "baseline:latest": host namespaces (hostNetwork=true), ...`).
//!
//! The checks are those pods of kcap, kubectl and the test bed can trip; AppArmor,
//! SELinux, procMount, sysctls, seccomp at baseline and Windows are not emulated.
//! Violations are listed in the plugin's order: the checks shared by both levels, then
//! those of the level itself.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::status::ApiError;

const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

/// Capabilities a baseline container may add (the container runtime's defaults,
/// without NET_RAW).
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Volume types a restricted pod may use (those backed by the API or by PVs).
const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

/// What a namespace enforces: level and version, as `baseline:latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub level: Level,
    pub version: String,
}

impl Policy {
    /// Read from a Namespace object's labels; no namespace or no label: privileged.
    /// An unknown level counts as restricted and an unknown version as latest: the
    /// plugin fails closed.
    pub fn of_namespace(namespace: Option<&Value>) -> Policy {
        let labels = namespace.map(|n| &n["metadata"]["labels"]);
        let label = |key: &str| labels.and_then(|l| l[key].as_str());
        let level = match label(ENFORCE_LABEL) {
            None | Some("privileged") => Level::Privileged,
            Some("baseline") => Level::Baseline,
            Some(_) => Level::Restricted,
        };
        let version = match label(ENFORCE_VERSION_LABEL) {
            Some(v) if v == "latest" || v.strip_prefix("v1.").is_some_and(is_number) => v,
            _ => "latest",
        };
        Policy {
            level,
            version: version.to_string(),
        }
    }

    fn name(&self) -> String {
        let level = match self.level {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        };
        format!("{level}:{}", self.version)
    }

    /// Refuses `pod` (its whole spec, ephemeral containers included, as the plugin
    /// evaluates it) when it violates this policy.
    pub fn admit(&self, pod: &Value) -> Result<(), ApiError> {
        let found = violations(self.level, &pod["spec"]);
        if found.is_empty() {
            return Ok(());
        }
        Err(ApiError::forbidden_object(
            "pods",
            pod["metadata"]["name"].as_str().unwrap_or(""),
            format!(
                "violates PodSecurity \"{}\": {}",
                self.name(),
                found.join(", ")
            ),
        ))
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Every violation as `reason (detail)`, in the plugin's order.
pub fn violations(level: Level, spec: &Value) -> Vec<String> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect();
    let mut checks = vec![
        ("host namespaces", host_namespaces(spec)),
        ("hostPath volumes", host_path_volumes(spec)),
        ("hostPort", host_ports(&containers)),
        ("privileged", privileged(&containers)),
    ];
    if level == Level::Baseline {
        checks.push(("non-default capabilities", added_capabilities(&containers)));
    } else {
        checks.extend([
            (
                "allowPrivilegeEscalation != false",
                privilege_escalation(&containers),
            ),
            ("unrestricted capabilities", unrestricted(&containers)),
            ("restricted volume types", restricted_volumes(spec)),
            ("runAsNonRoot != true", run_as_non_root(spec, &containers)),
            ("runAsUser=0", run_as_root(spec, &containers)),
            ("seccompProfile", seccomp(spec, &containers)),
        ]);
    }
    checks
        .into_iter()
        .filter_map(|(reason, detail)| Some(format!("{reason} ({})", detail?)))
        .collect()
}

/// `"a", "b"`.
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural<'a>(one: &'a str, many: &'a str, n: usize) -> &'a str {
    if n == 1 { one } else { many }
}

/// `container "a"` or `containers "a", "b"`.
fn containers_named(names: &[&str]) -> String {
    format!(
        "{} {}",
        plural("container", "containers", names.len()),
        join_quote(names)
    )
}

fn name(c: &Value) -> &str {
    c["name"].as_str().unwrap_or("")
}

fn names_where<'a>(containers: &[&'a Value], bad: impl Fn(&Value) -> bool) -> Vec<&'a str> {
    containers
        .iter()
        .filter(|c| bad(c))
        .map(|c| name(c))
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn host_namespaces(spec: &Value) -> Option<String> {
    let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|k| spec[**k] == true)
        .map(|k| format!("{k}=true"))
        .collect();
    (!set.is_empty()).then(|| set.join(", "))
}

fn host_path_volumes(spec: &Value) -> Option<String> {
    let names: Vec<&str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["hostPath"].is_object())
        .map(name)
        .collect();
    (!names.is_empty()).then(|| {
        format!(
            "{} {}",
            plural("volume", "volumes", names.len()),
            join_quote(&names)
        )
    })
}

fn host_ports(containers: &[&Value]) -> Option<String> {
    let port = |p: &Value| p["hostPort"].as_u64().filter(|n| *n != 0);
    let bad = names_where(containers, |c| {
        c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| port(p).is_some())
    });
    // Sorted as text, as the plugin's string set does: "443, 80, 8443".
    let ports: BTreeSet<String> = containers
        .iter()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|p| port(p).map(|n| n.to_string()))
        .collect();
    (!bad.is_empty()).then(|| {
        let ports: Vec<String> = ports.into_iter().collect();
        format!(
            "{} {} {} {}",
            containers_named(&bad),
            plural("uses", "use", bad.len()),
            plural("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        )
    })
}

fn privileged(containers: &[&Value]) -> Option<String> {
    let bad = names_where(containers, |c| c["securityContext"]["privileged"] == true);
    (!bad.is_empty()).then(|| {
        format!(
            "{} must not set securityContext.privileged=true",
            containers_named(&bad)
        )
    })
}

fn added(c: &Value) -> Vec<&str> {
    strings(&c["securityContext"]["capabilities"]["add"])
}

/// Baseline: capabilities outside the runtime's default set.
fn added_capabilities(containers: &[&Value]) -> Option<String> {
    let allowed = |cap: &&str| BASELINE_CAPABILITIES.contains(cap);
    let bad = names_where(containers, |c| !added(c).iter().all(allowed));
    let caps: BTreeSet<&str> = containers
        .iter()
        .flat_map(|c| added(c))
        .filter(|cap| !allowed(cap))
        .collect();
    (!bad.is_empty()).then(|| {
        let caps: Vec<&str> = caps.into_iter().collect();
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&bad),
            join_quote(&caps)
        )
    })
}

fn privilege_escalation(containers: &[&Value]) -> Option<String> {
    let bad = names_where(containers, |c| {
        c["securityContext"]["allowPrivilegeEscalation"] != false
    });
    (!bad.is_empty()).then(|| {
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_named(&bad)
        )
    })
}

/// Restricted: drop ALL, add nothing but NET_BIND_SERVICE.
fn unrestricted(containers: &[&Value]) -> Option<String> {
    let no_drop_all = names_where(containers, |c| {
        !strings(&c["securityContext"]["capabilities"]["drop"]).contains(&"ALL")
    });
    let extra = |cap: &&str| *cap != "NET_BIND_SERVICE";
    let adding = names_where(containers, |c| added(c).iter().any(extra));
    let caps: BTreeSet<&str> = containers
        .iter()
        .flat_map(|c| added(c))
        .filter(extra)
        .collect();
    let mut details = Vec::new();
    if !no_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_named(&no_drop_all)
        ));
    }
    if !adding.is_empty() {
        let caps: Vec<&str> = caps.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&adding),
            join_quote(&caps)
        ));
    }
    (!details.is_empty()).then(|| details.join("; "))
}

fn restricted_volumes(spec: &Value) -> Option<String> {
    let mut names = Vec::new();
    let mut types = BTreeSet::new();
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let Some(kind) = v.as_object().and_then(|o| o.keys().find(|k| *k != "name")) else {
            continue;
        };
        if !RESTRICTED_VOLUME_TYPES.contains(&kind.as_str()) {
            names.push(name(v));
            types.insert(kind.as_str());
        }
    }
    (!names.is_empty()).then(|| {
        let types: Vec<&str> = types.into_iter().collect();
        format!(
            "{} {} {} {} {}",
            plural("volume", "volumes", names.len()),
            join_quote(&names),
            plural("uses", "use", names.len()),
            plural(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        )
    })
}

/// Who sets a security field to a refused value: `pod`, `container "a"`, joined
/// with " and " as the plugin words it.
fn setters(pod_bad: bool, containers: &[&str]) -> String {
    let mut who = Vec::new();
    if pod_bad {
        who.push("pod".to_string());
    }
    if !containers.is_empty() {
        who.push(containers_named(containers));
    }
    who.join(" and ")
}

fn run_as_non_root(spec: &Value, containers: &[&Value]) -> Option<String> {
    let pod = &spec["securityContext"]["runAsNonRoot"];
    let explicit = names_where(containers, |c| {
        c["securityContext"]["runAsNonRoot"] == false
    });
    if *pod == false || !explicit.is_empty() {
        return Some(format!(
            "{} must not set securityContext.runAsNonRoot=false",
            setters(*pod == false, &explicit)
        ));
    }
    let implicit = names_where(containers, |c| {
        c["securityContext"]["runAsNonRoot"].is_null() && *pod != true
    });
    (!implicit.is_empty()).then(|| {
        format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_named(&implicit)
        )
    })
}

fn run_as_root(spec: &Value, containers: &[&Value]) -> Option<String> {
    let pod = spec["securityContext"]["runAsUser"] == 0;
    let bad = names_where(containers, |c| c["securityContext"]["runAsUser"] == 0);
    (pod || !bad.is_empty()).then(|| format!("{} must not set runAsUser=0", setters(pod, &bad)))
}

fn seccomp(spec: &Value, containers: &[&Value]) -> Option<String> {
    let kind = |sc: &Value| sc["seccompProfile"]["type"].as_str().map(String::from);
    let valid = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let pod = kind(&spec["securityContext"]);
    let pod_bad = pod.as_deref().is_some_and(|t| !valid(t));
    let explicit = names_where(containers, |c| {
        kind(&c["securityContext"]).is_some_and(|t| !valid(&t))
    });
    if pod_bad || !explicit.is_empty() {
        let values: BTreeSet<String> = pod
            .clone()
            .into_iter()
            .chain(
                containers
                    .iter()
                    .filter_map(|c| kind(&c["securityContext"])),
            )
            .filter(|t| !valid(t))
            .collect();
        let values: Vec<String> = values.into_iter().collect();
        return Some(format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters(pod_bad, &explicit),
            join_quote(&values)
        ));
    }
    let pod_set = pod.is_some();
    let implicit = names_where(containers, |c| {
        kind(&c["securityContext"]).is_none() && !pod_set
    });
    (!implicit.is_empty()).then(|| {
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_named(&implicit)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(level: &str) -> Value {
        json!({"metadata": {"name": "secure", "labels": {ENFORCE_LABEL: level}}})
    }

    /// kcap's helper pod, as `--via node` creates it.
    fn helper() -> Value {
        json!({"metadata": {"name": "kcap-helper-abcde"}, "spec": {
            "hostNetwork": true, "hostPID": true,
            "containers": [{"name": "capture", "securityContext": {"privileged": true, "runAsUser": 0}}]}})
    }

    fn refusal(level: &str, pod: &Value) -> String {
        let e = Policy::of_namespace(Some(&labelled(level)))
            .admit(pod)
            .unwrap_err();
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        e.message
    }

    #[test]
    fn baseline_refuses_the_helper_pod_in_the_plugins_words() {
        assert_eq!(
            refusal("baseline", &helper()),
            r#"pods "kcap-helper-abcde" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true, hostPID=true), privileged (container "capture" must not set securityContext.privileged=true)"#
        );
    }

    #[test]
    fn baseline_refuses_added_capabilities_of_an_ephemeral_container() {
        let pod = json!({"metadata": {"name": "app"}, "spec": {
            "containers": [{"name": "app"}],
            "ephemeralContainers": [{"name": "kcap-x", "securityContext": {
                "capabilities": {"add": ["NET_RAW", "NET_ADMIN", "CHOWN"]}}}]}});
        assert_eq!(
            refusal("baseline", &pod),
            r#"pods "app" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "kcap-x" must not include "NET_ADMIN", "NET_RAW" in securityContext.capabilities.add)"#
        );
    }

    #[test]
    fn baseline_host_paths_and_ports() {
        let pod = json!({"metadata": {"name": "exporter"}, "spec": {
            "volumes": [{"name": "proc", "hostPath": {"path": "/proc"}}, {"name": "tmp", "emptyDir": {}},
                        {"name": "sys", "hostPath": {"path": "/sys"}}],
            "containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 80}, {"containerPort": 443, "hostPort": 443}]},
                           {"name": "b", "ports": [{"containerPort": 9100}]}]}});
        assert_eq!(
            violations(Level::Baseline, &pod["spec"]),
            [
                r#"hostPath volumes (volumes "proc", "sys")"#,
                r#"hostPort (container "a" uses hostPorts 443, 80)"#
            ]
        );
    }

    #[test]
    fn restricted_wants_a_locked_down_container() {
        let pod =
            json!({"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "plain"}]}});
        assert_eq!(
            refusal("restricted", &pod),
            concat!(
                r#"pods "plain" is forbidden: violates PodSecurity "restricted:latest": "#,
                r#"allowPrivilegeEscalation != false (container "plain" must set securityContext.allowPrivilegeEscalation=false), "#,
                r#"unrestricted capabilities (container "plain" must set securityContext.capabilities.drop=["ALL"]), "#,
                r#"runAsNonRoot != true (pod or container "plain" must set securityContext.runAsNonRoot=true), "#,
                r#"seccompProfile (pod or container "plain" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
            )
        );
        let locked = json!({"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "ok", "securityContext": {"allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}]}});
        assert!(violations(Level::Restricted, &locked["spec"]).is_empty());
    }

    #[test]
    fn restricted_also_lists_the_baseline_checks_first() {
        let v = violations(Level::Restricted, &helper()["spec"]);
        assert_eq!(v[0], "host namespaces (hostNetwork=true, hostPID=true)");
        assert!(v[1].starts_with("privileged ("), "{v:?}");
        assert!(
            v.contains(&r#"runAsUser=0 (container "capture" must not set runAsUser=0)"#.into()),
            "{v:?}"
        );
    }

    #[test]
    fn labels_and_versions() {
        let none = Policy::of_namespace(Some(&json!({"metadata": {"name": "x"}})));
        assert_eq!(none.level, Level::Privileged);
        assert!(none.admit(&helper()).is_ok());
        assert_eq!(
            Policy::of_namespace(Some(&labelled("bogus"))).level,
            Level::Restricted
        );
        let mut ns = labelled("baseline");
        ns["metadata"]["labels"][ENFORCE_VERSION_LABEL] = json!("v1.29");
        assert!(refusal_in(&ns).contains(r#""baseline:v1.29""#));
    }

    fn refusal_in(ns: &Value) -> String {
        Policy::of_namespace(Some(ns))
            .admit(&helper())
            .unwrap_err()
            .message
    }
}
