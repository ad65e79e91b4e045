//! gracestop's end-to-end suite: real third-party servers (nginx, Debian's
//! Tomcat 10) on 127.0.0.1, driven by stdlib Python harnesses, with every
//! process they start stopped by PID or pidfd. One test binary (`e2e`).

mod web;
