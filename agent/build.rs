//! Sets `cfg(taskdumps)` where tokio's `taskdump` feature (its tracing
//! mode, which the agent's captures use) exists: Linux on x86, x86_64,
//! aarch64 or s390x, built with `--cfg tokio_unstable`.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(taskdumps)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let unstable = std::env::var_os("CARGO_CFG_TOKIO_UNSTABLE").is_some();
    if unstable && os == "linux" && ["x86", "x86_64", "aarch64", "s390x"].contains(&arch.as_str()) {
        println!("cargo::rustc-cfg=taskdumps");
    }
}
