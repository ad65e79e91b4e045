//! Links the unwinder from libgcc_eh.a instead of libgcc_s.so.1 (what
//! `gcc -static-libgcc` does) in the default, dynamically linked build on glibc.
//!
//! Rust's standard library asks for `-lgcc_s`, so every start of gracestop
//! would open, map and relocate libgcc_s.so.1 and run its CPU-detection
//! constructor, for code that only runs on a panic. With libgcc_eh.a named by
//! this package, its objects resolve the `_Unwind_*` symbols first, and the
//! linker (`--as-needed`, as rustc passes) then drops libgcc_s.so.1: about
//! 0.1 ms off every start, measured on `run -- /bin/true`. Where the C
//! compiler has no libgcc_eh.a (clang without libgcc, say), nothing changes.
//! A static build (`crt-static`) links libgcc_eh.a already.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE").split(',').any(|f| f == "crt-static");
    // Native builds only: `cc` names the host's compiler and its libgcc_eh.a.
    let native = var("TARGET") == var("HOST");
    if !native || var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" || static_crt {
        return;
    }
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let Ok(out) = Command::new(&cc).arg("-print-file-name=libgcc_eh.a").output() else { return };
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // A compiler that does not know the file prints its bare name back.
    if !out.status.success() || !path.is_absolute() || !path.is_file() {
        return;
    }
    if let Some(dir) = path.parent() {
        // A compiler upgrade that moves or removes the archive runs this again,
        // rather than leaving a cached search path that no longer links.
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
