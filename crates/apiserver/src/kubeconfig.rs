//! The kubeconfig handed to users and tests, written by hand (no YAML dependency): one
//! cluster with the CA inline, one token user, one context.

use base64::Engine;

pub fn render(server: &str, ca_pem: &str, user: &str, token: &str, namespace: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kcap
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: kcap
  context:
    cluster: kcap
    user: {user}
    namespace: {namespace}
current-context: kcap
"
    )
}
