//! Reads a classic pcap stream on stdin (e.g. `tcpdump -U -w - | ...`) and
//! writes it as pcapng to stdout, the way kcap handles one remote stream.

use std::io::{Read, Write};

use kcap_pcap::{InterfaceDescription, PcapngWriter, StreamDecoder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = std::io::stdin().lock();
    let mut decoder = StreamDecoder::new();
    let mut writer = PcapngWriter::new(std::io::stdout().lock(), "kcap-pcap example")?;
    let mut interface = None;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut chunk)?;
        decoder.push(&chunk[..n]);
        while let Some(packet) = decoder.next_packet()? {
            let id = match interface {
                Some(id) => id,
                None => {
                    let header = decoder.header().expect("header precedes packets");
                    let id = writer.add_interface(&InterfaceDescription {
                        link_type: header.link_type,
                        snaplen: header.snaplen,
                        name: "stdin".to_owned(),
                        description: None,
                    })?;
                    *interface.insert(id)
                }
            };
            writer.write_packet(id, &packet, None)?;
        }
        if n == 0 {
            break;
        }
    }
    if decoder.pending_bytes() > 0 {
        eprintln!(
            "input ended inside a record ({} bytes dropped)",
            decoder.pending_bytes()
        );
    }
    writer.into_inner()?.flush()?;
    Ok(())
}
