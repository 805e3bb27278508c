//! Any word through the shell lexer (both escape characters, raw and
//! cooked quotes) must never panic.
#![no_main]

use frontend::shell::{EnvList, Lexer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(word) = std::str::from_utf8(data) else { return };
    let mut env = EnvList::new();
    env.set("a", "hello world");
    env.set("p", "/usr/local/bin/x.tar.gz");
    env.set("e", "");
    for escape in ['\\', '`'] {
        let mut lx = Lexer::new(escape);
        let _ = lx.process(word, &env);
        lx.raw_quotes = true;
        lx.raw_escapes = true;
        lx.skip_unset_env = true;
        let _ = lx.process(word, &env);
    }
});
