//! Access reviews against the API server: the real kubectl's `auth can-i` and kube-rs
//! with k8s-openapi's `SelfSubjectAccessReview` (the way kcap asks) get the answers of
//! the authorizer that judges real requests, for both users; the request log records
//! each question as a question.

mod common;

use std::path::Path;

use common::Bed;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SubjectAccessReviewStatus,
};
use kcap_apiserver::{AccessQuestion, ApiRequest, RequestKind};

/// `kubectl auth can-i ARGS` as `kubeconfig`'s user: (stdout, stderr, exit code).
fn can_i(bed: &Bed, kubeconfig: &Path, args: &[&str]) -> (String, String, i32) {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let out = bed.run(bed.command("kubectl", kubeconfig, &all));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn yes() -> (String, String, i32) {
    ("yes\n".into(), String::new(), 0)
}

fn no() -> (String, String, i32) {
    ("no\n".into(), String::new(), 1)
}

/// The log entry of one `SelfSubjectAccessReview` asking `question`.
fn review(user: &str, question: AccessQuestion) -> ApiRequest {
    ApiRequest {
        user: user.into(),
        method: "POST".into(),
        path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews".into(),
        query: String::new(),
        kind: RequestKind::AccessReview,
        verb: "create".into(),
        group: "authorization.k8s.io".into(),
        resource: "selfsubjectaccessreviews".into(),
        subresource: None,
        namespace: None,
        name: None,
        status: 201,
        review: Some(question),
    }
}

#[test]
fn kubectl_auth_can_i_for_admin_and_restricted() {
    require_kubectl!();
    let bed = Bed::start();
    let (admin, restricted) = (&bed.admin, &bed.restricted);
    // The subresource as kubectl names it (`pods/exec` alone would be the pod "exec").
    let exec = ["create", "pods", "--subresource=exec", "-n", "prod"];
    assert_eq!(can_i(&bed, admin, &exec), yes());
    assert_eq!(can_i(&bed, restricted, &exec), no());
    assert_eq!(
        can_i(&bed, admin, &["create", "pods/exec", "-n", "prod"]),
        yes()
    );
    assert_eq!(
        can_i(&bed, restricted, &["create", "pods/exec", "-n", "prod"]),
        no()
    );
    let debug = ["patch", "pods", "--subresource=ephemeralcontainers"];
    assert_eq!(can_i(&bed, admin, &debug), yes());
    assert_eq!(can_i(&bed, restricted, &debug), no());
    assert_eq!(
        can_i(&bed, restricted, &["patch", "pods/ephemeralcontainers"]),
        no()
    );
    assert_eq!(can_i(&bed, admin, &["create", "pods"]), yes());
    assert_eq!(can_i(&bed, restricted, &["create", "pods"]), no());
    // What the restricted user may do: read, also logs and across namespaces.
    assert_eq!(can_i(&bed, restricted, &["get", "pods"]), yes());
    assert_eq!(
        can_i(&bed, restricted, &["list", "deployments", "-A"]),
        yes()
    );
    assert_eq!(
        can_i(&bed, restricted, &["get", "pods", "--subresource=log"]),
        yes()
    );
    assert_eq!(can_i(&bed, restricted, &["get", "/api"]), yes());
    assert_eq!(can_i(&bed, restricted, &["post", "/api"]), no());
    // ... which is what the server does when the restricted user posts there.
    let body = bed.dir.path().join("empty.json");
    std::fs::write(&body, "{}").unwrap();
    let body = body.to_str().unwrap();
    let post =
        |k: &Path| bed.run(bed.command("kubectl", k, &["create", "--raw", "/api", "-f", body]));
    let out = post(restricted);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error from server (Forbidden): forbidden: User \"restricted\" cannot post path \"/api\"\n"
    );
    assert!(post(admin).status.success());

    let asked = |verb: &str, group: &str, resource: &str, sub: Option<&str>, ns: Option<&str>| {
        AccessQuestion {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.map(String::from),
            namespace: ns.map(String::from),
            ..AccessQuestion::default()
        }
    };
    let allowed = |q: AccessQuestion| AccessQuestion { allowed: true, ..q };
    let exec_q = asked("create", "", "pods", Some("exec"), Some("prod"));
    let named_exec = AccessQuestion {
        name: Some("exec".into()),
        ..asked("create", "", "pods", None, Some("prod"))
    };
    // The admin kubeconfig's namespace is `default`, the restricted one's `prod`.
    let debug_q = |ns| asked("patch", "", "pods", Some("ephemeralcontainers"), Some(ns));
    let create_q = |ns| asked("create", "", "pods", None, Some(ns));
    let path_q = |verb: &str| AccessQuestion {
        verb: verb.into(),
        path: Some("/api".into()),
        ..AccessQuestion::default()
    };
    // Not a question: a POST to a non-resource path, logged as a change.
    let post_api = |user: &str, status| ApiRequest {
        path: "/api".into(),
        kind: RequestKind::Change,
        verb: String::new(),
        group: String::new(),
        resource: String::new(),
        status,
        review: None,
        ..review(user, AccessQuestion::default())
    };
    assert_eq!(
        bed.requests(),
        vec![
            review("admin", allowed(exec_q.clone())),
            review("restricted", exec_q),
            review("admin", allowed(named_exec.clone())),
            review("restricted", named_exec),
            review("admin", allowed(debug_q("default"))),
            review("restricted", debug_q("prod")),
            review(
                "restricted",
                AccessQuestion {
                    name: Some("ephemeralcontainers".into()),
                    ..asked("patch", "", "pods", None, Some("prod"))
                }
            ),
            review("admin", allowed(create_q("default"))),
            review("restricted", create_q("prod")),
            review(
                "restricted",
                allowed(asked("get", "", "pods", None, Some("prod")))
            ),
            review(
                "restricted",
                allowed(asked("list", "apps", "deployments", None, None))
            ),
            review(
                "restricted",
                allowed(asked("get", "", "pods", Some("log"), Some("prod")))
            ),
            review("restricted", allowed(path_q("get"))),
            review("restricted", path_q("post")),
            post_api("restricted", 403),
            post_api("admin", 200),
        ]
    );
}

/// kcap's way: kube-rs creates a k8s-openapi `SelfSubjectAccessReview` (JSON) and
/// reads the answer back into the same type.
#[test]
fn kube_rs_round_trips_a_self_subject_access_review() {
    let bed = Bed::start();
    let ask = |kubeconfig: &Path, subresource: &str| {
        let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let config = kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .unwrap();
            let api: kube::Api<SelfSubjectAccessReview> =
                kube::Api::all(kube::Client::try_from(config).unwrap());
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some("prod".into()),
                        verb: Some("create".into()),
                        resource: Some("pods".into()),
                        subresource: Some(subresource.into()),
                        name: Some("tools".into()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = api
                .create(&kube::api::PostParams::default(), &review)
                .await
                .unwrap();
            assert_eq!(answer.spec, review.spec);
            answer.status.unwrap()
        })
    };
    assert_eq!(
        ask(&bed.admin, "exec"),
        SubjectAccessReviewStatus {
            allowed: true,
            reason: Some(
                r#"RBAC: allowed by ClusterRoleBinding "kcap-testbed-admin" of ClusterRole "cluster-admin" to User "admin""#
                    .into()
            ),
            ..SubjectAccessReviewStatus::default()
        }
    );
    assert_eq!(
        ask(&bed.restricted, "attach"),
        SubjectAccessReviewStatus {
            allowed: false,
            ..SubjectAccessReviewStatus::default()
        }
    );
    let log = bed.requests();
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(
        log.iter()
            .all(|r| r.kind == RequestKind::AccessReview && !r.acted())
    );
    assert_eq!(
        log[1].review.as_ref().unwrap().subresource.as_deref(),
        Some("attach")
    );
}
