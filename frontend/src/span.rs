//! Source positions. Lines and columns are 1-based; columns count
//! characters (not bytes) of the physical line.

use serde::Serialize;

/// A point in the Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Position {
    /// 1-based line number.
    pub line: u32,
    /// 1-based character column.
    pub column: u32,
}

/// A range of the Dockerfile: `start` inclusive, `end` exclusive. A span
/// may cover several physical lines (continuations, heredocs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Span {
    /// First character.
    pub start: Position,
    /// One past the last character.
    pub end: Position,
}

impl Span {
    /// A span covering whole lines `first..=last` (column 1 to end unknown:
    /// `end.column` is 0, meaning "to the end of the line").
    pub fn lines(first: u32, last: u32) -> Self {
        Span {
            start: Position {
                line: first,
                column: 1,
            },
            end: Position {
                line: last,
                column: 0,
            },
        }
    }

    /// A span on one line from column `start` (inclusive) to `end`
    /// (exclusive).
    pub fn on_line(line: u32, start: u32, end: u32) -> Self {
        Span {
            start: Position {
                line,
                column: start,
            },
            end: Position { line, column: end },
        }
    }

    /// The first line.
    pub fn line(&self) -> u32 {
        self.start.line
    }
}
