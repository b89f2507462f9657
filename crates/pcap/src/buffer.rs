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
    /// `None` only after `into_inner` has taken it.
    inner: Option<W>,
}

impl<W: Write> RecordBuffer<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            buf: Vec::with_capacity(CAPACITY),
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

    /// Hands the whole buffer to the inner writer. On error, the bytes that
    /// were not accepted stay buffered so a retry does not corrupt the file.
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
        self.buf.drain(..written);
        result.map_err(Error::io("writing capture"))
    }
}

impl<W: Write> Drop for RecordBuffer<W> {
    /// Like `BufWriter`: best effort, since errors cannot be reported here.
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.flush_buf();
        }
    }
}
