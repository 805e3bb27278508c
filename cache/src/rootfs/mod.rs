//! Root filesystems in and out: `export` (an image flattened into one
//! tar) and `import` (a rootfs tar made into a one-layer image).

mod change;
mod export;
mod import;

pub use change::apply_change;
pub use export::export;
pub use import::{ImportOptions, import};
