//! File names of rotated and flight-recorder files: the `-o` name with its strftime
//! fields filled in with the local time the file starts, and, when rotating, a
//! five-digit number before the extension (`cap.pcapng`: `cap-00001.pcapng`,
//! `cap-00002.pcapng`, ...; past 99999 the number just grows).

use std::path::{Path, PathBuf};

/// The strftime fields kcap fills in; any other `%` in a name is refused.
pub const FIELDS: &str = "%Y %y %m %d %H %M %S %s %F %T %%";

/// Checks that every `%` of `template` starts a field kcap knows.
pub fn check(template: &str) -> Result<(), String> {
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('Y' | 'y' | 'm' | 'd' | 'H' | 'M' | 'S' | 's' | 'F' | 'T' | '%') => {}
            Some(other) => {
                return Err(format!(
                    "-o {template:?}: %{other} is not a time field kcap knows ({FIELDS})"
                ));
            }
            None => return Err(format!("-o {template:?} ends with a lone %")),
        }
    }
    Ok(())
}

/// `template` with its fields filled in for `secs` since the epoch, in local time.
/// A name that is not UTF-8 has no fields and is returned as it is.
pub fn expand(template: &Path, secs: i64) -> PathBuf {
    let Some(text) = template.to_str().filter(|t| t.contains('%')) else {
        return template.to_path_buf();
    };
    let t = crate::time::local(secs);
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let field = match chars.next() {
            Some('Y') => format!("{:04}", t.year),
            Some('y') => format!("{:02}", t.year.rem_euclid(100)),
            Some('m') => format!("{:02}", t.month),
            Some('d') => format!("{:02}", t.day),
            Some('H') => format!("{:02}", t.hour),
            Some('M') => format!("{:02}", t.minute),
            Some('S') => format!("{:02}", t.second),
            Some('s') => secs.to_string(),
            Some('F') => format!("{:04}-{:02}-{:02}", t.year, t.month, t.day),
            Some('T') => format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second),
            Some('%') => "%".into(),
            // Refused by `check` when the flags were read.
            Some(other) => format!("%{other}"),
            None => "%".into(),
        };
        out.push_str(&field);
    }
    PathBuf::from(out)
}

/// The name of rotated file number `index` (from 1), started at `secs`.
pub fn numbered(template: &Path, index: u64, secs: i64) -> PathBuf {
    let path = expand(template, secs);
    let number = format!("{index:05}");
    let name = match (path.file_stem(), path.extension()) {
        (Some(stem), Some(ext)) => {
            let mut name = stem.to_os_string();
            name.push(format!("-{number}."));
            name.push(ext);
            name
        }
        (Some(stem), None) => {
            let mut name = stem.to_os_string();
            name.push(format!("-{number}"));
            name
        }
        (None, _) => number.into(),
    };
    path.with_file_name(name)
}

/// The current time in seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-04 05:06:07 in local time: the fields are checked against the C
    /// library's own conversion, so the test holds in any time zone.
    fn moment() -> (i64, crate::time::Local) {
        let secs = 1_772_600_767;
        (secs, crate::time::local(secs))
    }

    #[test]
    fn numbers_go_before_the_extension() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(numbered(&p("cap.pcapng"), 1, 0), p("cap-00001.pcapng"));
        assert_eq!(numbered(&p("/d/cap.pcap"), 42, 0), p("/d/cap-00042.pcap"));
        assert_eq!(numbered(&p("dir.x/cap"), 7, 0), p("dir.x/cap-00007"));
        assert_eq!(
            numbered(&p("cap.pcapng"), 123_456, 0),
            p("cap-123456.pcapng")
        );
    }

    #[test]
    fn time_fields_are_local_time() {
        let (secs, t) = moment();
        let want = format!(
            "/c/{:04}/{:02}{:02}-{:02}{:02}{:02}-{:02}-{}-100%.pcapng",
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.year % 100,
            secs
        );
        let got = expand(Path::new("/c/%Y/%m%d-%H%M%S-%y-%s-100%%.pcapng"), secs);
        assert_eq!(got, PathBuf::from(want));
        let f = expand(Path::new("%F_%T"), secs);
        assert_eq!(
            f.to_str().unwrap(),
            format!(
                "{:04}-{:02}-{:02}_{:02}:{:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            )
        );
        let n = numbered(Path::new("cap-%H%M%S.pcapng"), 3, secs);
        assert_eq!(
            n.to_str().unwrap(),
            format!(
                "cap-{:02}{:02}{:02}-00003.pcapng",
                t.hour, t.minute, t.second
            )
        );
        assert_eq!(
            expand(Path::new("plain.pcap"), secs),
            PathBuf::from("plain.pcap")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(check("cap-%Y%m%d-%H%M%S.pcapng").is_ok());
        assert!(check("100%%.pcap").is_ok());
        assert!(
            check("cap-%q.pcap")
                .unwrap_err()
                .contains("%q is not a time field")
        );
        assert!(check("cap%").unwrap_err().contains("lone %"));
    }
}
