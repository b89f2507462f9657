//! One capture from start to end: open the output, start every node's capture and
//! the writer, apply the stop conditions, and collect what happened.

use std::time::Instant;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::event::{CHANNEL_BATCHES, Event};
use crate::node::{self, NodeReport};
use crate::output::{self, OutputError, SourceInfo, WriterReport};
use crate::stop::{Stop, StopReason, watch_signals};

/// Everything [`crate::report`] needs to print the summary and pick the exit code.
pub struct Outcome {
    pub nodes: Vec<NodeReport>,
    pub writer: WriterReport,
    pub stop: Option<StopReason>,
    pub elapsed: std::time::Duration,
}

pub enum RunError {
    Output(OutputError),
    Signals(std::io::Error),
}

pub async fn run(config: Config) -> Result<Outcome, RunError> {
    let started = Instant::now();
    let stop = Stop::new();
    watch_signals(stop.clone()).map_err(RunError::Signals)?;
    let file = output::open(&config.output).map_err(RunError::Output)?;

    if let Some(duration) = config.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            stop.stop(StopReason::Duration);
        });
    }

    let sources = config
        .nodes
        .iter()
        .map(|n| SourceInfo {
            label: n.label.clone(),
            interface_name: format!("{}:{}", n.label, config.command.interface),
            description: format!(
                "{} via ssh, interface {}",
                n.label, config.command.interface
            ),
        })
        .collect();
    let (events, receiver) = mpsc::channel(CHANNEL_BATCHES);
    let writer = {
        let (output, stop, count) = (config.output.clone(), stop.clone(), config.count);
        std::thread::spawn(move || output::run(&output, file, sources, receiver, stop, count))
    };
    let ticker = {
        let events = events.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                tick.tick().await;
                if events.send(Event::Tick).await.is_err() {
                    break;
                }
            }
        })
    };
    let tasks: Vec<_> = config
        .nodes
        .iter()
        .enumerate()
        .map(|(source, target)| {
            tokio::spawn(node::capture(
                source,
                target.clone(),
                config.command.clone(),
                events.clone(),
                stop.clone(),
            ))
        })
        .collect();
    drop(events);
    let mut nodes = Vec::new();
    for task in tasks {
        nodes.push(task.await.expect("node capture task panicked"));
    }
    ticker.abort();
    let _ = ticker.await;
    let writer = tokio::task::spawn_blocking(move || writer.join())
        .await
        .expect("join the writer")
        .expect("writer thread panicked");
    Ok(Outcome {
        nodes,
        writer,
        stop: stop.reason(),
        elapsed: started.elapsed(),
    })
}
