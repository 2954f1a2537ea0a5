//! The tokio daemon.
