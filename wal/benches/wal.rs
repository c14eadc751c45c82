//! Criterion benchmarks of the write-ahead log (placeholder until the full suite lands).

fn main() {}
