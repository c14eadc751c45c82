//! Numbers out of Prometheus text exposition (what a server's `/metrics` answers).
//!
//! Also compiled into the recovery benchmark (`benches/recovery.rs`, through `#[path]`), which
//! reads the recovery metrics of the `oms` binary it starts; so it uses `std` only.

/// The value of the first sample named exactly `name` in Prometheus text exposition, with or
/// without labels (`name 1.5`, `name{a="b"} 1.5`, optionally followed by a timestamp).
pub(crate) fn parse_metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(name)?;
        let value_part = if let Some(labelled) = rest.strip_prefix('{') {
            &labelled[labelled.find('}')? + 1..]
        } else if rest.starts_with([' ', '\t']) {
            rest
        } else {
            // Another metric whose name starts with `name` (or a comment line).
            return None;
        };
        value_part
            .split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: &str = "process_cpu_seconds_total";
    const RSS: &str = "process_resident_memory_bytes";

    const TEXT: &str = "\
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total_extra 99
process_cpu_seconds_total 12.34
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.048576e+07
oms_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 42 1700000000000
";

    #[test]
    fn parses_standard_process_metrics() {
        assert_eq!(parse_metric(TEXT, CPU), Some(12.34));
        assert_eq!(parse_metric(TEXT, RSS), Some(10_485_760.0));
    }

    #[test]
    fn parses_labelled_samples_with_timestamps() {
        assert_eq!(parse_metric(TEXT, "oms_http_requests_total"), Some(42.0));
    }

    #[test]
    fn absent_or_garbled_metric_is_none() {
        assert_eq!(parse_metric(TEXT, "process_open_fds"), None);
        assert_eq!(parse_metric("", CPU), None);
        assert_eq!(parse_metric("process_cpu_seconds_total abc\n", CPU), None);
        assert_eq!(parse_metric("process_cpu_seconds_total NaN\n", CPU), None);
        assert_eq!(parse_metric("process_cpu_seconds_total{a=\"b\" 5\n", CPU), None);
        // Only a prefix of another name: not this metric (even when the rest reads as a number).
        assert_eq!(
            parse_metric("requests_total2 5\nrequests_total 7\n", "requests_total"),
            Some(7.0)
        );
        assert_eq!(parse_metric("process_cpu_seconds_total_extra 99\n", CPU), None);
    }
}
