//! Any bytes: parsing, dumping, and (when parsing succeeds) compiling with
//! the scratch resolver must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ast) = frontend::parse(data) {
        let _ = ast.dump();
        let _ = frontend::compile(&ast, &frontend::CompileOptions::default(), &frontend::ScratchResolver);
    }
});
