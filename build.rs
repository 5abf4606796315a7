//! Compiles the shipped schemas into the binary (see `SchemaRegistry::embedded`), and the order
//! domain events of `schemas/proto` into Rust types (prost, with protox as the compiler, so no
//! system `protoc` is needed).

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read when the script runs, not when it is compiled: cargo may reuse one compiled script
    // for a checkout at another path that shares the target directory.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("schemas");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    for sub in ["", "envelope"] {
        let dir = root.join(sub);
        println!("cargo:rerun-if-changed={}", dir.display());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.strip_prefix(&root).unwrap_or(&path).to_owned();
                files.push((name.to_string_lossy().replace('\\', "/"), path));
            }
        }
    }
    files.sort();
    let mut out = String::from("&[\n");
    for (name, path) in files {
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded_schemas.rs");
    std::fs::write(dest, out).unwrap();

    compile_protos(&root.join("proto"));
}

/// `schemas/proto/*.proto` → `$OUT_DIR/<package>.rs` (included by `src/order/events.rs`).
fn compile_protos(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut protos: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "proto"))
                .collect()
        })
        .unwrap_or_default();
    protos.sort();
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    if protos.is_empty() {
        return;
    }
    let descriptors = match protox::compile(&protos, [dir]) {
        Ok(d) => d,
        Err(e) => panic!(
            "the protobuf schemas in {} do not compile: {e:?}",
            dir.display()
        ),
    };
    prost_build::Config::new()
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("prost cannot generate the protobuf types: {e}"));
}
