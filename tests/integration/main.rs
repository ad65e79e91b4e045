//! gracestop's integration tests: one binary, real processes, no mocks.

mod support;

mod deregister;
mod fixtures;
mod run;
mod stop;
