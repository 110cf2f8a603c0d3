//! Turning values into text for people: durations, counts, and target
//! strings made safe for a terminal.

use std::time::Duration;

/// "850ms", "42s", "7m12s", "3h05m", "2d04h".
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    if secs < 60 {
        return format!("{secs}s");
    }
    let (m, s) = (secs / 60, secs % 60);
    if m < 60 {
        return format!("{m}m{s:02}s");
    }
    let (h, m) = (m / 60, m % 60);
    if h < 24 {
        return format!("{h}h{m:02}m");
    }
    format!("{}d{:02}h", h / 24, h % 24)
}

/// A short duration as precisely as latencies need: `850ns`, `42µs`,
/// `1.25ms`, `310ms`; a second or more as [`duration`].
pub fn latency(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..10_000 => format!("{:.1}µs", ns as f64 / 1e3),
        10_000..1_000_000 => format!("{}µs", ns / 1_000),
        1_000_000..10_000_000 => format!("{:.2}ms", ns as f64 / 1e6),
        10_000_000..1_000_000_000 => format!("{}ms", ns / 1_000_000),
        _ => duration(d),
    }
}

/// A duration given in seconds (as reports carry them), or "–".
pub fn secs(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s.is_finite() => duration(Duration::from_secs_f64(s.clamp(0.0, 1e12))),
        _ => "–".into(),
    }
}

/// A count with thin grouping: 12408 → "12 408".
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A signed change: "+41", "-3", "0".
pub fn delta(d: i64) -> String {
    if d > 0 {
        format!("+{d}")
    } else {
        d.to_string()
    }
}

/// A Unix timestamp as RFC 3339 UTC, to the second ("2026-11-24T01:15:00Z"),
/// held to the years 1970..=9999 that the format and the wall clock share
/// (a target's clock can say anything).
fn rfc3339(unix_ns: i64) -> String {
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let secs = unix_ns.div_euclid(1_000_000_000).clamp(0, LAST) as u64;
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// "2026-11-24T01:15:00Z".
pub fn utc_iso(unix_ns: i64) -> String {
    rfc3339(unix_ns)
}

/// "20261124-011500", for file names.
pub fn utc_stamp(unix_ns: i64) -> String {
    let t = rfc3339(unix_ns);
    // YYYY-MM-DDTHH:MM:SSZ → YYYYMMDD-HHMMSS
    let (date, time) = t.split_once('T').unwrap_or((&t, ""));
    format!(
        "{}-{}",
        date.replace('-', ""),
        time.trim_end_matches('Z').replace(':', "")
    )
}

/// The local clock as Unix nanoseconds.
pub fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A target address made safe for a file name: "127.0.0.1-6669".
pub fn file_safe(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    out.trim_end_matches('-').to_string()
}

/// `▁▂▃▅▇` for the last `width` values, scaled between their min and max.
pub fn sparkline(values: &[u64], width: usize) -> String {
    let points: Vec<Option<u64>> = values.iter().copied().map(Some).collect();
    sparkline_gaps(&points, width)
}

/// As [`sparkline`], with `None` (no data: taskscope was disconnected)
/// drawn as a blank.
pub fn sparkline_gaps(values: &[Option<u64>], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let known = tail.iter().flatten();
    let (Some(&min), Some(&max)) = (known.clone().min(), known.max()) else {
        return " ".repeat(tail.len());
    };
    tail.iter()
        .map(|v| match *v {
            None => ' ',
            Some(_) if max == min => {
                if max == 0 {
                    BARS[0]
                } else {
                    BARS[3]
                }
            }
            Some(v) => {
                let i = ((v - min) * 7 + (max - min) / 2) / (max - min);
                BARS[i.min(7) as usize]
            }
        })
        .collect()
}

/// The text of a panic's payload (`panic!` with a literal or a format).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Makes a target-supplied string inert for a terminal and caps its length:
/// escape sequences and control characters are dropped (a newline becomes
/// `⏎`), and a string longer than `max` characters ends with `…`.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 4));
    let mut chars = s.chars().peekable();
    let mut n = 0;
    while let Some(c) = chars.next() {
        if n >= max {
            out.push('…');
            return out;
        }
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\n' | '\r' => {
                out.push('⏎');
                n += 1;
            }
            '\t' => {
                out.push(' ');
                n += 1;
            }
            c if c.is_control() => {}
            // Bidirectional overrides can reorder what the user sees.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c => {
                out.push(c);
                n += 1;
            }
        }
    }
    out
}

fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.peek() {
        // CSI: ESC [ params final-byte(0x40..0x7e)
        Some('[') => {
            chars.next();
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
        // OSC / DCS / APC / PM / SOS: up to BEL or ESC \
        Some(']') | Some('P') | Some('_') | Some('^') | Some('X') => {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' {
                    if chars.peek() == Some(&'\\') {
                        chars.next();
                    }
                    break;
                }
            }
        }
        Some(_) => {
            chars.next();
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_secs(42)), "42s");
        assert_eq!(duration(Duration::from_secs(432)), "7m12s");
        assert_eq!(duration(Duration::from_secs(3 * 3600 + 300)), "3h05m");
        assert_eq!(duration(Duration::from_secs(52 * 3600)), "2d04h");
    }

    #[test]
    fn counts_are_grouped() {
        assert_eq!(count(7), "7");
        assert_eq!(count(12408), "12 408");
        assert_eq!(count(1_000_000), "1 000 000");
    }

    #[test]
    fn sparkline_scales_and_truncates() {
        assert_eq!(sparkline(&[0, 1, 2, 3, 4, 5, 6, 7], 8), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[9, 9, 0, 7], 2), "▁█");
        assert_eq!(sparkline(&[5, 5], 8), "▄▄");
        assert_eq!(sparkline(&[], 8), "");
        assert_eq!(sparkline_gaps(&[Some(0), None, None, Some(7)], 8), "▁  █");
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(utc_iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_iso(1_795_482_900_000_000_000), "2026-11-24T01:15:00Z");
        assert_eq!(utc_stamp(951_782_400_000_000_000), "20000229-000000");
        // A target's clock at the ends of the range.
        assert_eq!(utc_iso(i64::MIN), "1970-01-01T00:00:00Z");
        assert_eq!(utc_iso(i64::MAX), "2262-04-11T23:47:16Z");
        assert_eq!(file_safe("[::1]:6669"), "1-6669");
        assert_eq!(file_safe("127.0.0.1:6669"), "127.0.0.1-6669");
    }

    #[test]
    fn escapes_are_removed() {
        assert_eq!(sanitize("a\u{1b}[31mred\u{1b}[0m", 80), "ared");
        assert_eq!(sanitize("x\u{1b}]0;title\u{7}y", 80), "xy");
        assert_eq!(sanitize("x\u{1b}]8;;http://e\u{1b}\\y", 80), "xy");
        assert_eq!(sanitize("line1\nline2\u{0}", 80), "line1⏎line2");
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert_eq!(sanitize("\u{202e}evil", 80), "evil");
    }
}
