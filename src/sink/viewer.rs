//! The live pcapng stream for a viewer that may go away: Wireshark started by
//! `--wireshark` (its stdin) or Wireshark's extcap FIFO. Its reader closing is how
//! the user ends the capture, not a failed output: the sink stops the capture
//! ([`StopReason::ViewerClosed`]) and takes no more packets, and kcap exits 0.
//! Any other write error is an output failure as for a file.

use std::io::Write;

use kcap_pcap::Packet;

use super::file::FileSink;
use super::{Interface, Sink, SinkError, SourceEnd};
use crate::config::Format;
use crate::event::SourceId;
use crate::names::NameTable;
use crate::stop::{Stop, StopReason};

/// pcapng into a pipe read by Wireshark.
pub struct ViewerSink {
    inner: FileSink<Box<dyn Write + Send>>,
    stop: Stop,
    /// The reader went away: everything from now on is dropped.
    closed: bool,
}

impl ViewerSink {
    /// `target` names the pipe in error messages (e.g. "Wireshark's stdin").
    pub fn new(pipe: Box<dyn Write + Send>, target: String, stop: Stop) -> Result<Self, SinkError> {
        // The section header is only buffered here: a closed pipe shows on the flush.
        let mut sink = ViewerSink {
            inner: FileSink::with_writer(pipe, Format::Pcapng, target)?,
            stop,
            closed: false,
        };
        // Wireshark waits for the section header before it shows the capture as started.
        sink.flush()?;
        Ok(sink)
    }

    /// Runs `write` unless the reader is gone; a closed pipe ends the capture cleanly.
    fn guard(
        &mut self,
        write: impl FnOnce(&mut FileSink<Box<dyn Write + Send>>) -> Result<(), SinkError>,
    ) -> Result<(), SinkError> {
        if self.closed {
            return Ok(());
        }
        match write(&mut self.inner) {
            Err(SinkError::Write { source, .. })
                if source.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                self.closed = true;
                self.stop.stop(StopReason::ViewerClosed);
                Ok(())
            }
            other => other,
        }
    }
}

impl Sink for ViewerSink {
    fn names(&mut self, names: &NameTable) -> Result<(), SinkError> {
        self.guard(|s| s.names(names))
    }

    fn interface(&mut self, interface: Interface<'_>) -> Result<(), SinkError> {
        self.guard(|s| s.interface(interface))
    }

    fn packet(
        &mut self,
        source: SourceId,
        packet: &Packet,
        comment: Option<&str>,
    ) -> Result<(), SinkError> {
        self.guard(|s| s.packet(source, packet, comment))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.guard(FileSink::flush)
    }

    fn source_end(&mut self, end: SourceEnd<'_>) -> Result<(), SinkError> {
        self.guard(|s| s.source_end(end))
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.guard(FileSink::finish)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe whose reader left after `accept` bytes.
    struct ClosingPipe {
        accept: usize,
    }

    impl Write for ClosingPipe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.accept == 0 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.accept);
            self.accept -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_stops_the_capture_instead_of_failing() {
        let stop = Stop::default();
        let pipe = Box::new(ClosingPipe { accept: 0 });
        let mut sink = ViewerSink::new(pipe, "Wireshark".into(), stop.clone()).unwrap();
        assert_eq!(stop.reason(), Some(StopReason::ViewerClosed));
        assert!(sink.flush().is_ok());
        assert!(sink.finish().is_ok());
    }

    #[test]
    fn other_write_errors_still_fail() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let stop = Stop::default();
        let result = ViewerSink::new(Box::new(Full), "fifo".into(), stop.clone());
        assert!(matches!(result, Err(SinkError::Write { .. })));
        assert_eq!(stop.reason(), None);
    }
}
