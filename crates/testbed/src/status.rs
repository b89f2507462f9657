//! `kcap-testbed status`: a human-readable summary of a bed from its state.json
//! and, for cluster beds, the pods from crictl's state file (what the runtime
//! runs right now, so it works without asking the API server).

use std::fmt::Write as _;

use anyhow::Result;

use crate::netns;
use crate::state::State;

pub(crate) fn report(state: &State) -> Result<String> {
    let mut out = String::new();
    let up = |ns: &str| {
        if netns::exists(ns) {
            "present"
        } else {
            "MISSING"
        }
    };
    writeln!(
        out,
        "test bed in {} (started by pid {})",
        state.dir.display(),
        state.owner_pid
    )?;
    writeln!(
        out,
        "ssh config:  {}",
        state.dir.join("ssh_config").display()
    )?;
    writeln!(out, "client netns: {}", state.client_netns)?;
    let kubeconfig = state.dir.join("kubeconfig");
    if kubeconfig.exists() {
        writeln!(
            out,
            "kubeconfig:  {} (API server https://{}:{})",
            kubeconfig.display(),
            crate::spec::CONTROL_PLANE_ADDRESS,
            crate::spec::API_PORT
        )?;
    }
    for n in &state.networks {
        writeln!(
            out,
            "network {:8} {}/{:<3} switch netns {} ({})",
            n.name,
            n.subnet,
            n.prefix_len,
            n.netns,
            up(&n.netns)
        )?;
    }
    for h in &state.hosts {
        let addrs: Vec<String> = h
            .addresses
            .iter()
            .map(|(n, a)| format!("{n}={a}"))
            .collect();
        let sshd = match state
            .pids
            .iter()
            .find(|(host, kind, _)| host == &h.name && kind == "sshd")
        {
            Some((_, _, pid))
                if netns::is_running(*pid) && netns::comm(*pid).as_deref() == Some("sshd") =>
            {
                format!("sshd alive (pid {pid})")
            }
            Some((_, _, pid)) => format!("sshd DEAD (pid {pid})"),
            None => "no sshd".to_string(),
        };
        writeln!(
            out,
            "host {:11} {:30} netns {} ({}), {sshd}",
            h.name,
            addrs.join(" "),
            h.netns,
            up(&h.netns)
        )?;
    }
    let cri = crate::cluster::cri_state_path(&state.dir.join("cluster"));
    if let Ok(cri) = crate::cluster::load_cri_state(&cri) {
        let mut pods = cri.pods;
        pods.sort_by(|a, b| {
            (&a.node, &a.namespace, &a.name).cmp(&(&b.node, &b.namespace, &b.name))
        });
        for p in pods {
            let name = format!("{}/{}", p.namespace, p.name);
            writeln!(out, "pod  {:30} {:15} on {}", name, p.ip, p.node)?;
        }
    }
    Ok(out)
}
