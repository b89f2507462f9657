//! `pods/NAME/exec`: runs the command through the runtime after the upgrade and relays
//! its stdio. The process is not killed when the client goes away (a real kubelet does
//! not either): its stdin is closed and its pipes dropped, so it ends by EOF or SIGPIPE.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::attach::{pump, stdin_writer, widen_pipe};
use super::channel::{self, Protocol};
use super::websocket::{self, StdinSink, Ws};
use crate::cluster::Cluster;
use crate::runtime::RuntimeError;
use crate::status;

pub struct ExecRequest {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub argv: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

pub async fn run(cluster: Arc<Cluster>, ws: Ws, proto: Protocol, req: ExecRequest) {
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(16);
    let rt = cluster.runtime.clone();
    let r = Arc::new(req);
    let r2 = r.clone();
    let started = tokio::task::spawn_blocking(move || {
        rt.exec(
            &r2.namespace,
            &r2.pod,
            &r2.container,
            &r2.argv,
            r2.stdin,
            r2.tty,
        )
    })
    .await
    .unwrap_or_else(|e| {
        Err(RuntimeError::Failed {
            message: e.to_string(),
        })
    });
    let mut child = match started {
        Ok(child) => child,
        Err(e) => {
            let message = match &e {
                RuntimeError::ExecutableNotFound { executable } => format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{executable}\": executable file not found in $PATH: unknown"
                ),
                other => other.to_string(),
            };
            let _ = out_tx
                .send(channel::status_frame(proto, &status::exec_failure(message)))
                .await;
            drop(out_tx);
            websocket::run(ws, proto, out_rx, StdinSink { tx: None }).await;
            return;
        }
    };
    let stdin_tx = child.stdin.take().map(stdin_writer);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    if let Some(s) = &stdout {
        widen_pipe(s);
    }
    let (want_out, want_err) = (r.stdout, r.stderr);
    tokio::spawn(async move {
        // An empty message on the first output channel tells the client the stream is up.
        let first = if want_out {
            channel::STDOUT
        } else {
            channel::STDERR
        };
        let _ = out_tx.send(vec![first]).await;
        let send = |want: bool| {
            let tx = out_tx.clone();
            move |m: Vec<u8>| {
                let tx = tx.clone();
                async move { !want || tx.send(m).await.is_ok() }
            }
        };
        let out_pump = async {
            if let Some(s) = stdout {
                pump(s, channel::STDOUT, send(want_out)).await
            }
        };
        let err_pump = async {
            if let Some(s) = stderr {
                pump(s, channel::STDERR, send(want_err)).await
            }
        };
        tokio::join!(out_pump, err_pump);
        let code = {
            use std::os::unix::process::ExitStatusExt;
            match child.wait().await {
                Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
                Err(_) => 255,
            }
        };
        let _ = out_tx
            .send(channel::status_frame(
                proto,
                &status::exit_status(code, &r.argv),
            ))
            .await;
    });
    websocket::run(ws, proto, out_rx, StdinSink { tx: stdin_tx }).await;
}
