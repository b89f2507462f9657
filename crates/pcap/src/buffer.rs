//! A write buffer that only ever hands whole records to the OS.
//!
//! If kcap is killed, whatever reached the file ends at a record boundary, so
//! the partial capture still opens cleanly in Wireshark. `std::io::BufWriter`
//! cannot promise that: it splits a record whenever the buffer fills mid-record.

use std::io::Write;

use crate::Error;

/// Buffer capacity: large enough that a maximum tcpdump record (256 KiB of
/// data plus headers) still fits, so only pathological records bypass it.
pub(crate) const CAPACITY: usize = 512 * 1024;

#[derive(Debug)]
pub(crate) struct RecordBuffer<W: Write> {
    buf: Vec<u8>,
    /// Where each record in `buf` ends: a write the OS accepted only in part
    /// (a disk filling up) is known to have torn the record it stopped in.
    ends: Vec<usize>,
    /// Bytes of torn records that reached the inner writer, not yet taken by
    /// [`Self::take_torn`].
    torn: u64,
    /// A write failed: dropping the buffer then writes nothing more (a partial
    /// write there could tear a record again, where nobody can cut it back).
    failed: bool,
    /// `None` only after `into_inner` has taken it.
    inner: Option<W>,
}

impl<W: Write> RecordBuffer<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            buf: Vec::with_capacity(CAPACITY),
            ends: Vec::new(),
            torn: 0,
            failed: false,
            inner: Some(inner),
        }
    }

    /// Returns the buffer to append exactly one record of `len` bytes to,
    /// first flushing what is buffered if the record would not fit.
    #[inline]
    pub(crate) fn begin_record(&mut self, len: usize) -> Result<&mut Vec<u8>, Error> {
        if !self.buf.is_empty() && self.buf.len() + len > CAPACITY {
            self.flush_buf()?;
        }
        Ok(&mut self.buf)
    }

    /// Called after a record was appended: an oversized record (the buffer grew
    /// past its capacity for it alone) goes out at once, in a single write.
    #[inline]
    pub(crate) fn end_record(&mut self) -> Result<(), Error> {
        self.ends.push(self.buf.len());
        if self.buf.len() >= CAPACITY {
            self.flush_buf()?;
            // Give back memory an oversized record made the buffer grow to.
            self.buf.shrink_to(CAPACITY);
        }
        Ok(())
    }

    pub(crate) fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of a record torn by a failed write that reached the inner writer
    /// (its last bytes): a file cut back by them ends at a record boundary.
    pub(crate) fn take_torn(&mut self) -> u64 {
        std::mem::take(&mut self.torn)
    }

    /// Writes the buffer out and flushes the inner writer.
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        self.flush_buf()?;
        self.inner_mut().flush().map_err(Error::io("flushing"))
    }

    pub(crate) fn into_inner(mut self) -> Result<W, Error> {
        self.flush()?;
        Ok(self
            .inner
            .take()
            .expect("inner writer present until into_inner"))
    }

    fn inner_mut(&mut self) -> &mut W {
        self.inner
            .as_mut()
            .expect("inner writer present until into_inner")
    }

    /// Hands the whole buffer to the inner writer. On error, the records not
    /// begun stay buffered; a record the OS took only part of is dropped, and
    /// the part it took is counted in `torn` for the caller to cut back (the
    /// inner writer may be a pipe, which cannot be).
    fn flush_buf(&mut self) -> Result<(), Error> {
        let mut written = 0;
        let inner = self
            .inner
            .as_mut()
            .expect("inner writer present until into_inner");
        let result = loop {
            if written == self.buf.len() {
                break Ok(());
            }
            match inner.write(&self.buf[written..]) {
                Ok(0) => {
                    break Err(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "writer accepted no bytes",
                    ));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let cut = match result {
            Ok(()) => written,
            Err(_) => {
                self.failed = true;
                // The record the write stopped in: from the last end at or
                // before `written` to the first end after it.
                // The buffer's start is a record boundary too.
                let done = self.ends.iter().rev().find(|&&e| e <= written);
                let done = done.copied().unwrap_or(0);
                if done == written {
                    written
                } else {
                    self.torn += (written - done) as u64;
                    let next = self.ends.iter().find(|&&e| e > written);
                    next.copied().unwrap_or(self.buf.len())
                }
            }
        };
        self.buf.drain(..cut);
        self.ends.retain(|&e| e > cut);
        for end in &mut self.ends {
            *end -= cut;
        }
        result.map_err(Error::io("writing capture"))
    }
}

impl<W: Write> Drop for RecordBuffer<W> {
    /// Like `BufWriter`: best effort, since errors cannot be reported here;
    /// nothing after a failed write.
    fn drop(&mut self) {
        if self.inner.is_some() && !self.failed {
            let _ = self.flush_buf();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `room` bytes, then fails like a full disk.
    struct Disk {
        data: Vec<u8>,
        room: usize,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::ErrorKind::StorageFull.into());
            }
            let n = buf.len().min(self.room);
            self.data.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record(out: &mut RecordBuffer<Disk>, byte: u8, len: usize) {
        let buf = out.begin_record(len).unwrap();
        buf.extend(std::iter::repeat_n(byte, len));
        out.end_record().unwrap();
    }

    #[test]
    fn a_partial_write_reports_the_torn_record_and_drops_it() {
        let mut out = RecordBuffer::new(Disk {
            data: Vec::new(),
            room: 25,
        });
        record(&mut out, 1, 10);
        record(&mut out, 2, 10);
        record(&mut out, 3, 10);
        record(&mut out, 4, 10);
        assert!(out.flush().is_err());
        // 25 bytes went out: two records and half of the third.
        assert_eq!(out.take_torn(), 5);
        assert_eq!(out.take_torn(), 0, "counted once");
        // The third record is gone; the fourth waits, whole.
        assert_eq!(out.buffered_len(), 10);
        out.inner_mut().data.truncate(20);
        out.inner_mut().room = 100;
        out.flush().unwrap();
        let data = &out.inner_mut().data;
        assert_eq!(data.len(), 30);
        assert!(data[20..].iter().all(|&b| b == 4));
    }

    #[test]
    fn a_write_refused_whole_tears_nothing() {
        let mut out = RecordBuffer::new(Disk {
            data: Vec::new(),
            room: 0,
        });
        record(&mut out, 1, 10);
        assert!(out.flush().is_err());
        assert_eq!(out.take_torn(), 0);
        assert_eq!(out.buffered_len(), 10, "kept for a retry");
    }
}
