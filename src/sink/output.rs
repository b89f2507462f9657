//! The capture file output as the flags ask for it: one file (or stdout), rotated
//! files with or without `--max-size`, or the flight recorder. Opened before
//! anything connects, so a bad path fails in milliseconds.

use super::file::{self, FileSink, OpenOutput};
use super::flight::FlightSink;
use super::rotate::RotatingSink;
use super::{FileReportHandle, Sink, SinkError};
use crate::config::{Output, OutputDestination};
use crate::limits::FileLimits;

/// The output, opened (or, for the flight recorder, checked).
pub enum Opened {
    Plain(OpenOutput),
    Rotating(Box<RotatingSink>),
    Flight(Box<FlightSink>),
}

/// Opens what `output` and `limits` describe; the counts for the summary of rotated
/// files and the flight recorder go to `report`.
pub fn open(
    output: &Output,
    limits: &FileLimits,
    report: &FileReportHandle,
) -> Result<Opened, SinkError> {
    let template = match &output.destination {
        OutputDestination::File(path) if limits.any() => path,
        // Config refuses limits on stdout.
        _ => return file::open(output).map(Opened::Plain),
    };
    if let Some(flight) = limits.flight {
        let sink = FlightSink::new(template, output.format, flight, report.clone())?;
        return Ok(Opened::Flight(Box::new(sink)));
    }
    let sink = RotatingSink::open(
        template,
        output.format,
        limits.rotation,
        limits.max_size,
        report.clone(),
    )?;
    Ok(Opened::Rotating(Box::new(sink)))
}

impl Opened {
    pub fn into_sink(self, output: &Output) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match self {
            Opened::Plain(open) => Box::new(FileSink::new(open, output.format)?),
            Opened::Rotating(sink) => sink,
            Opened::Flight(sink) => sink,
        })
    }
}
