//! `weir-lsp`: the Weir language server on standard input and output.

fn main() {
    weir_lsp::serve_stdio();
}
