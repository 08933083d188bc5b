//! Weir's compiler.
pub mod diagnostics;
pub mod syntax;
