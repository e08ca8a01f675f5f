//! distill's Dockerfile frontend, faithful to BuildKit's.
//!
//! The pipeline has one input and one output type per step, as in BuildKit:
//! text → [`parser::parse`] → [`ast::Ast`] (untyped nodes) →
//! [`instructions::parse_stages`] → typed [`instructions::Stage`]s →
//! [`plan::plan`] → a resolved [`plan::BuildPlan`] (ARGs expanded, stage
//! graph, pruning). [`shell`] is the word lexer used for expansion, and
//! [`lint`] runs BuildKit's build checks. Nothing here does I/O.

pub mod ast;
pub mod error;
pub mod instructions;
pub mod lint;
pub mod parser;
pub mod plan;
pub mod shell;
pub mod syntax;

pub use ast::{Ast, Heredoc, Node};
pub use error::{Error, ErrorKind, Result};
pub use parser::parse;
