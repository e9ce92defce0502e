//! Writes prost types for `onnx.proto3` into `crates/attnkit-onnx/src/proto/`.
//!
//! Usage (from the repository root):
//! `cargo run --manifest-path tools/onnx-proto/Cargo.toml -- tools/onnx-proto/onnx.proto3`
//!
//! protox parses the schema in pure Rust, so no `protoc` binary is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schema = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tools/onnx-proto/onnx.proto3".to_string());
    let dir = std::path::Path::new(&schema)
        .parent()
        .ok_or("schema path has no parent")?
        .to_path_buf();
    let descriptors = protox::compile([&schema], [&dir])?;
    let out = std::path::Path::new("crates/attnkit-onnx/src/proto");
    std::fs::create_dir_all(out)?;
    prost_build::Config::new()
        .out_dir(out)
        .compile_fds(descriptors)?;
    println!("wrote {}", out.display());
    Ok(())
}
