//! Text to [`Ast`]. STUB: being written.

use thiserror::Error;

use crate::ast::Ast;
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("file with no instructions")]
    Empty,
}

pub fn parse(input: &[u8]) -> Result<Ast, Error> {
    let _ = input;
    Err(Error::new(ParseErrorKind::Empty, 0, 0))
}
