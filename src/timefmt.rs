//! Times as SAP's programs print them: C's `ctime` layout without the newline, local time
//! (`Thu Jan  1 00:00:00 2015`), in `-G` lines, error records, `-l` and niping's output.

use std::time::SystemTime;

/// `t` in `ctime` form.
pub fn ctime(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// Now in `ctime` form.
pub fn ctime_now() -> String {
    ctime(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_has_c_layout() {
        // "Thu Jan  1 00:00:00 2015": day, month, space-padded day of month, time, year.
        let t = ctime_now();
        let parts: Vec<&str> = t.split_whitespace().collect();
        assert_eq!(parts.len(), 5, "{t}");
        assert_eq!(t.len(), 24, "{t}");
        assert_eq!(parts[3].len(), 8, "{t}");
        assert_eq!(ctime(SystemTime::UNIX_EPOCH).len(), 24);
    }
}
