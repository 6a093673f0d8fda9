//! Running under a service manager: the systemd readiness, reload, stop and watchdog
//! protocol ([`notify`]).

pub mod notify;
