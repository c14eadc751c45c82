//! Given/when/then tests of `decide` and `apply`, one group per command.
