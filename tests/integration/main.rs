//! gracestop's integration tests: one binary, real processes, no mocks.

mod support;

mod deregister;
mod events;
mod fixtures;
mod generated;
mod init;
mod peers;
mod properties;
mod readme;
mod run;
mod soak;
mod stop;
mod trust;
