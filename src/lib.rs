//! oms
