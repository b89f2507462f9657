//! The fan-out between one capture and its viewers.
//!
//! The capture side writes pcapng in whole blocks: [`Hub::preamble`] for the
//! blocks every viewer needs whenever it joins (section header, interface
//! descriptions, name records), [`Hub::data`] for the rest (packets,
//! statistics). A viewer joining gets the preamble so far, then every block from
//! then on, so its stream is a valid pcapng whose interface ids match the file's.
//!
//! Each viewer has a queue of its own, bounded in bytes. The capture never waits
//! for a viewer: one whose queue would pass the bound is cut off (its connection
//! ends with an error, [`Next::CutOff`]) and counted; the others go on.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

/// Shared by the capture (the sink), the server's connections and `/status`.
pub struct Hub {
    state: Mutex<State>,
    /// Signalled whenever a viewer leaves (for [`Hub::wait_for_viewers`]).
    left: Condvar,
    limit: usize,
}

struct State {
    preamble: Vec<u8>,
    viewers: Vec<Subscriber>,
    next_id: u64,
    /// Subscriptions not yet dropped (a cut-off viewer counts until its
    /// connection is gone).
    connected: usize,
    /// The server's open connections (a stream's last bytes are still being
    /// written after its subscription is gone).
    connections: usize,
    status: Status,
}

struct Subscriber {
    id: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    shared: Arc<Shared>,
}

/// What a subscriber and the hub both see.
#[derive(Default)]
struct Shared {
    /// Bytes in the queue, not yet taken by the connection.
    queued: AtomicUsize,
    cut_off: AtomicBool,
}

/// `GET /status`, and the summary's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Status {
    pub targets: Vec<TargetStatus>,
    /// Viewers connected now.
    pub viewers: usize,
    /// Viewers that ever joined.
    pub viewers_served: u64,
    /// Viewers cut off because they fell behind.
    pub viewers_cut_off: u64,
    /// Bytes of the stream so far (what a viewer there from the start received).
    pub bytes_streamed: u64,
    /// The capture has ended: no viewer can join any more.
    pub ended: bool,
}

/// One capture target (a pod, a node's interface) in [`Status`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TargetStatus {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    /// Dropped by the kernel, once the capture tool said (at its end).
    pub dropped: Option<u64>,
}

/// How a viewer's stream went, as its connection tells the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerEnd {
    /// The capture ended and the viewer got all of it.
    Finished,
    /// The viewer fell behind by more than the bound and was cut off.
    CutOff { limit: usize },
    /// The viewer went away.
    Left,
}

impl Hub {
    /// `limit`: the bytes one viewer may have waiting before it is cut off.
    pub fn new(limit: usize) -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(State {
                preamble: Vec::new(),
                viewers: Vec::new(),
                next_id: 0,
                connected: 0,
                connections: 0,
                status: Status::default(),
            }),
            left: Condvar::new(),
            limit,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks every viewer needs: kept for the ones that join later, and sent
    /// to the ones already there.
    pub fn preamble(&self, blocks: &[u8]) {
        if blocks.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.preamble.extend_from_slice(blocks);
        self.broadcast(&mut state, Bytes::copy_from_slice(blocks));
    }

    /// Blocks for the viewers there now (packets, statistics).
    pub fn data(&self, blocks: Bytes) {
        if blocks.is_empty() {
            return;
        }
        let mut state = self.lock();
        self.broadcast(&mut state, blocks);
    }

    fn broadcast(&self, state: &mut State, blocks: Bytes) {
        state.status.bytes_streamed += blocks.len() as u64;
        let limit = self.limit;
        let mut cut_off = 0;
        state.viewers.retain(|viewer| {
            let queued = viewer.shared.queued.load(Ordering::Acquire);
            // An empty queue always takes a block, however large.
            if queued > 0 && queued + blocks.len() > limit {
                viewer.shared.cut_off.store(true, Ordering::Release);
                cut_off += 1;
                return false;
            }
            viewer
                .shared
                .queued
                .fetch_add(blocks.len(), Ordering::AcqRel);
            viewer.tx.send(blocks.clone()).is_ok()
        });
        state.status.viewers_cut_off += cut_off;
    }

    /// The capture ended: every viewer's stream ends after what it has queued,
    /// and none can join any more.
    pub fn end(&self) {
        let mut state = self.lock();
        state.status.ended = true;
        state.viewers.clear();
    }

    /// A new viewer, or `None` once the capture has ended.
    pub fn subscribe(self: &Arc<Self>) -> Option<Subscription> {
        let mut state = self.lock();
        if state.status.ended {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let preamble = Bytes::copy_from_slice(&state.preamble);
        shared.queued.store(preamble.len(), Ordering::Release);
        let _ = tx.send(preamble);
        let id = state.next_id;
        state.next_id += 1;
        state.connected += 1;
        state.status.viewers_served += 1;
        state.viewers.push(Subscriber {
            id,
            tx,
            shared: shared.clone(),
        });
        Some(Subscription {
            id,
            rx,
            shared,
            hub: self.clone(),
        })
    }

    fn leave(&self, id: u64) {
        let mut state = self.lock();
        state.viewers.retain(|v| v.id != id);
        state.connected -= 1;
        self.left.notify_all();
    }

    /// Counts a connection of the server as open until the guard is dropped.
    pub fn open_connection(self: &Arc<Self>) -> ConnectionGuard {
        self.lock().connections += 1;
        ConnectionGuard(self.clone())
    }

    /// Names the targets for `/status`, in the capture's order.
    pub fn add_target(&self, name: String) -> usize {
        let mut state = self.lock();
        state.status.targets.push(TargetStatus {
            name,
            ..TargetStatus::default()
        });
        state.status.targets.len() - 1
    }

    /// Adds to a target's figures.
    pub fn count(&self, target: usize, packets: u64, bytes: u64) {
        let mut state = self.lock();
        if let Some(t) = state.status.targets.get_mut(target) {
            t.packets += packets;
            t.bytes += bytes;
        }
    }

    pub fn dropped(&self, target: usize, dropped: u64) {
        if let Some(t) = self.lock().status.targets.get_mut(target) {
            t.dropped = Some(dropped);
        }
    }

    pub fn status(&self) -> Status {
        let state = self.lock();
        Status {
            viewers: state.connected,
            ..state.status.clone()
        }
    }

    /// Waits until every viewer and connection is gone, or `timeout`; returns
    /// how many viewers are still there.
    pub fn wait_for_viewers(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.connected > 0 || state.connections > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match self.left.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(e) => e.into_inner().0,
            };
        }
        state.connected
    }
}

/// See [`Hub::open_connection`].
pub struct ConnectionGuard(Arc<Hub>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.lock().connections -= 1;
        self.0.left.notify_all();
    }
}

/// One viewer's stream; leaves the hub when dropped.
pub struct Subscription {
    id: u64,
    rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
}

/// The next thing a viewer's connection sends.
#[derive(Debug)]
pub enum Next {
    Blocks(Bytes),
    /// The capture ended: end the stream cleanly.
    End,
    /// The viewer fell behind: end the stream with an error.
    CutOff,
}

impl Subscription {
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        if self.shared.cut_off.load(Ordering::Acquire) {
            return Poll::Ready(Next::CutOff);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(blocks)) => {
                self.shared.queued.fetch_sub(blocks.len(), Ordering::AcqRel);
                Poll::Ready(Next::Blocks(blocks))
            }
            Poll::Ready(None) if self.shared.cut_off.load(Ordering::Acquire) => {
                Poll::Ready(Next::CutOff)
            }
            Poll::Ready(None) => Poll::Ready(Next::End),
        }
    }

    pub async fn next(&mut self) -> Next {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// How this stream went, for a connection that ended on `next`'s answer.
    pub fn end(&self, next: &Next) -> ViewerEnd {
        match next {
            Next::CutOff => ViewerEnd::CutOff {
                limit: self.hub.limit,
            },
            Next::End => ViewerEnd::Finished,
            Next::Blocks(_) => ViewerEnd::Left,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.leave(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(sub: &mut Subscription) -> (Vec<u8>, Option<Next>) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut got = Vec::new();
        loop {
            match sub.poll_next(&mut cx) {
                Poll::Pending => return (got, None),
                Poll::Ready(Next::Blocks(b)) => got.extend_from_slice(&b),
                Poll::Ready(other) => return (got, Some(other)),
            }
        }
    }

    #[test]
    fn a_late_viewer_gets_the_preamble_then_only_what_follows() {
        let hub = Hub::new(1 << 20);
        hub.preamble(b"SHB.");
        let mut early = hub.subscribe().unwrap();
        hub.preamble(b"IDB0.");
        hub.data(Bytes::from_static(b"pkt1."));
        let mut late = hub.subscribe().unwrap();
        hub.preamble(b"IDB1.");
        hub.data(Bytes::from_static(b"pkt2."));
        hub.end();
        assert!(hub.subscribe().is_none(), "no one joins an ended capture");
        let (bytes, end) = drain(&mut early);
        assert_eq!(bytes, b"SHB.IDB0.pkt1.IDB1.pkt2.");
        assert!(matches!(end, Some(Next::End)));
        let (bytes, end) = drain(&mut late);
        assert_eq!(bytes, b"SHB.IDB0.IDB1.pkt2.");
        assert!(matches!(end, Some(Next::End)));
        assert_eq!(hub.status().viewers_served, 2);
    }

    #[test]
    fn a_viewer_that_falls_behind_is_cut_off_and_the_others_go_on() {
        let hub = Hub::new(10);
        let mut slow = hub.subscribe().unwrap();
        let mut fast = hub.subscribe().unwrap();
        for _ in 0..4 {
            hub.data(Bytes::from_static(b"1234"));
            let (bytes, end) = drain(&mut fast);
            assert_eq!(bytes, b"1234");
            assert!(end.is_none());
        }
        let (_, end) = drain(&mut slow);
        assert!(matches!(end, Some(Next::CutOff)));
        assert!(matches!(
            slow.end(&Next::CutOff),
            ViewerEnd::CutOff { limit: 10 }
        ));
        let status = hub.status();
        assert_eq!(status.viewers_cut_off, 1);
        assert_eq!(
            status.viewers, 2,
            "the cut-off one is connected until dropped"
        );
        drop(slow);
        assert_eq!(hub.status().viewers, 1);
        drop(fast);
        assert_eq!(hub.wait_for_viewers(Duration::from_millis(10)), 0);
    }

    #[test]
    fn targets_are_counted_for_status() {
        let hub = Hub::new(1 << 20);
        let a = hub.add_target("node-a".into());
        let b = hub.add_target("prod/web-0".into());
        hub.count(a, 2, 200);
        hub.count(b, 1, 60);
        hub.count(a, 1, 100);
        hub.dropped(b, 0);
        let status = hub.status();
        assert_eq!(status.targets[a].packets, 3);
        assert_eq!(status.targets[a].bytes, 300);
        assert_eq!(status.targets[b].dropped, Some(0));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["targets"][1]["name"], "prod/web-0");
    }
}
