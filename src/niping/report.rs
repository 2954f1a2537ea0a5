//! niping's output: ctime stamps, the timing summary and SAP's error block.

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use crate::ni::rterr::{rc_text, ErrorRecord};
use crate::ni::NI_VERSION;

pub use crate::timefmt::ctime_now as ctime;

/// Round-trip statistics, accumulated without storing the samples (loops may be many).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    count: u64,
    total: Duration,
    min: Option<Duration>,
    max: Option<Duration>,
}

impl Stats {
    /// Adds one round-trip time.
    pub fn add(&mut self, sample: Duration) {
        self.count += 1;
        self.total = self.total.saturating_add(sample);
        self.min = Some(self.min.map_or(sample, |m| m.min(sample)));
        self.max = Some(self.max.map_or(sample, |m| m.max(sample)));
    }

    /// Samples added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The summary block for messages of `bytes` bytes (docs/configuration.md §4.1): `avg`, `max`,
    /// `min` in ms, `tr` in kB/s (bytes per ms), then `av2`/`tr2` without the single
    /// largest and smallest sample (all samples when there are fewer than 3).
    pub fn render(&self, bytes: usize) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let avg = |total: Duration, n: u64| if n == 0 { 0.0 } else { ms(total) / n as f64 };
        let tr = |total: Duration, n: u64| {
            let t = ms(total);
            if t > 0.0 {
                bytes as f64 * n as f64 / t
            } else {
                0.0
            }
        };
        let (min, max) = (self.min.unwrap_or_default(), self.max.unwrap_or_default());
        let (total2, n2) = if self.count >= 3 {
            (
                self.total.saturating_sub(min).saturating_sub(max),
                self.count - 2,
            )
        } else {
            (self.total, self.count)
        };
        let mut s = String::new();
        let _ = writeln!(s, "------- times -----");
        let _ = writeln!(s, "avg  {:8.3} ms", avg(self.total, self.count));
        let _ = writeln!(s, "max  {:8.3} ms", ms(max));
        let _ = writeln!(s, "min  {:8.3} ms", ms(min));
        let _ = writeln!(s, "tr   {:8.3} kB/s", tr(self.total, self.count));
        let _ = writeln!(s, "excluding max and min:");
        let _ = writeln!(s, "av2  {:8.3} ms", avg(total2, n2));
        let _ = writeln!(s, "tr2  {:8.3} kB/s", tr(total2, n2));
        s
    }
}

/// SAP's error block for `rec` (docs/configuration.md §4.2): a `*** ERROR =>` headline, then
/// the fields as clients print them. LOCATION, ERROR and RC always appear; the others when
/// non-empty.
pub fn error_block(rec: &ErrorRecord) -> String {
    let mut headline = if rec.detail.is_empty() {
        rec.error.clone()
    } else {
        rec.detail.clone()
    };
    if !rec.module.is_empty() {
        let _ = write!(headline, " [{} {}]", rec.module, rec.line);
    }
    let stars = "*".repeat(71);
    let mut s = String::new();
    let _ = writeln!(s, "*** ERROR => {}", headline.trim_end());
    let _ = writeln!(s, "{stars}");
    let mut line = |key: &str, value: &str, always: bool| {
        if always || !value.is_empty() {
            let _ = writeln!(s, "{}", format!("*  {key:<12}{value}").trim_end());
        }
    };
    line("LOCATION", &rec.location, true);
    line("ERROR", &rec.error, true);
    line("", "", true);
    line("TIME", &rec.time, false);
    line("RELEASE", &rec.release, false);
    line("COMPONENT", &rec.component, false);
    line("VERSION", &rec.version, false);
    line("RC", &rec.return_code, true);
    line("MODULE", &rec.module, false);
    line("LINE", &rec.line, false);
    line("DETAIL", &rec.detail, false);
    line("SYSTEM CALL", &rec.system_call, false);
    line("ERRNO", &rec.errno, false);
    line("ERRNO TEXT", &rec.errno_text, false);
    line("COUNTER", &rec.error_count, false);
    let _ = writeln!(s, "{stars}");
    s
}

/// A record for an error niping detected itself (no LOCATION: "the error message refers to
/// a local program").
pub fn local_error(rc: i32, error: &str, detail: &str) -> ErrorRecord {
    ErrorRecord {
        counter: "1".into(),
        error: error.into(),
        return_code: rc.to_string(),
        component: "NI (network interface)".into(),
        version: NI_VERSION.to_string(),
        detail: detail.into(),
        time: ctime(),
        error_count: "1".into(),
        ..ErrorRecord::default()
    }
}

/// [`local_error`] for a failed system call, with its errno and text.
pub fn os_error(rc: i32, error: &str, detail: &str, call: &str, e: &io::Error) -> ErrorRecord {
    let text = e.to_string();
    // io::Error appends " (os error N)"; SAP prints the errno separately.
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    ErrorRecord {
        system_call: call.into(),
        errno: e.raw_os_error().map(|n| n.to_string()).unwrap_or_default(),
        errno_text: text,
        ..local_error(rc, error, detail)
    }
}

/// A record for an `NI_RTERR` whose text is not a `*ERR*` record (pysap's minimal form).
pub fn bare_error(rc: i32) -> ErrorRecord {
    let text = rc_text(rc).map_or_else(|| format!("error {rc}"), str::to_string);
    ErrorRecord {
        counter: "1".into(),
        error: text,
        return_code: rc.to_string(),
        ..ErrorRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_shape() {
        let t = ctime();
        assert_eq!(t.len(), 24, "{t:?}");
        assert_eq!(t.split_whitespace().count(), 5, "{t:?}");
    }

    #[test]
    fn stats_exclude_one_min_and_one_max() {
        let mut st = Stats::default();
        for ms in [1u64, 2, 3, 10] {
            st.add(Duration::from_millis(ms));
        }
        let text = st.render(1000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "------- times -----",
                "avg     4.000 ms",
                "max    10.000 ms",
                "min     1.000 ms",
                "tr    250.000 kB/s",
                "excluding max and min:",
                "av2     2.500 ms",
                "tr2   400.000 kB/s",
            ]
        );
    }

    #[test]
    fn stats_with_few_or_zero_samples() {
        let mut st = Stats::default();
        assert!(st.render(10).contains("avg     0.000 ms"));
        st.add(Duration::ZERO);
        assert!(st.render(10).contains("tr2     0.000 kB/s"));
        st.add(Duration::from_millis(2));
        assert!(st.render(10).contains("av2     1.000 ms"));
        assert_eq!(st.count(), 2);
    }

    #[test]
    fn error_block_layout() {
        let rec = ErrorRecord {
            counter: "1".into(),
            error: "route permission denied (10.0.0.1 to 10.0.0.2, 3298)".into(),
            return_code: "-94".into(),
            component: "NI (network interface)".into(),
            release: "753".into(),
            version: "40".into(),
            module: "nirout.cpp".into(),
            line: "2801".into(),
            detail: "NiRClientHandle: route permission denied".into(),
            time: "Thu Jan  1 00:00:00 2015".into(),
            error_count: "1".into(),
            location: "SAProuter 40.4 on 'host'".into(),
            ..Default::default()
        };
        let text = error_block(&rec);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "*** ERROR => NiRClientHandle: route permission denied [nirout.cpp 2801]"
        );
        assert_eq!(lines[1], "*".repeat(71));
        assert_eq!(lines[2], "*  LOCATION    SAProuter 40.4 on 'host'");
        assert_eq!(
            lines[3],
            "*  ERROR       route permission denied (10.0.0.1 to 10.0.0.2, 3298)"
        );
        assert_eq!(lines[4], "*");
        assert_eq!(lines[5], "*  TIME        Thu Jan  1 00:00:00 2015");
        assert!(lines.contains(&"*  RC          -94"));
        assert!(lines.contains(&"*  COUNTER     1"));
        assert!(!text.contains("SYSTEM CALL"));
        assert_eq!(lines.last(), Some(&"*".repeat(71).as_str()));
    }

    #[test]
    fn local_and_bare_errors() {
        let e = io::Error::from_raw_os_error(111);
        let rec = os_error(
            -10,
            "partner '127.0.0.1:1' not reached",
            "NiPConnect2: 127.0.0.1:1",
            "connect",
            &e,
        );
        let text = error_block(&rec);
        assert!(text.contains("*  LOCATION\n"), "{text}");
        assert!(text.contains("*  SYSTEM CALL connect"));
        assert!(text.contains("*  ERRNO       111"));
        assert!(!text.contains("os error"));
        let bare = error_block(&bare_error(-94));
        assert!(bare.contains("*  ERROR       Connect from source to destination not allowed"));
        assert!(bare.contains("*  RC          -94"));
        assert!(error_block(&bare_error(-7777)).contains("error -7777"));
    }
}
