//! Real-process tests (written next).
