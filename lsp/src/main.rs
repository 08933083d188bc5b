//! `weir-lsp`: the Weir language server on standard input and output.

/// mimalloc: the compiler allocates many small tree nodes; measured faster
/// than the system allocator on the benchmarks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    weir_lsp::serve_stdio();
}
