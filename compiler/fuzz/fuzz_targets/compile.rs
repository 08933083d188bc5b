//! Parse, check, plan and format arbitrary bytes: the compiler must return
//! diagnostics, never panic, and never report an internal error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let mut files = BTreeMap::new();
    files.insert("fuzz.weir".to_owned(), text.clone());
    let (_, diags) = weir_compiler::compile(&files, &weir_compiler::eval::EvalInput::default());
    if !text.contains("E9001") {
        assert!(diags.iter().all(|d| d.code != weir_compiler::diagnostics::Code::Internal));
    }
    let _ = weir_compiler::fmt::format_source("fuzz.weir", &text);
});
