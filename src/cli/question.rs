//! `gatehouse security-question …`

use clap::Subcommand;
use serde_json::json;

use super::output::table;
use super::{Context, Output};
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum QuestionCommand {
    /// Add a question users can choose
    Add { question: String },
    /// List questions and how many users chose each
    List,
    /// Delete a question nobody has chosen
    Remove { id: i64 },
}

pub async fn run(command: QuestionCommand, ctx: &Context, out: &Output) -> Result<()> {
    if !matches!(command, QuestionCommand::List) {
        ctx.admin_write_allowed()?;
    }
    let accounts = &ctx.accounts;
    match command {
        QuestionCommand::Add { question } => {
            let q = accounts.add_security_question(&ctx.actor, &question).await?;
            out.emit(&q, || format!("Added security question {}", q.id))
        }
        QuestionCommand::List => {
            let list = accounts.list_security_questions().await?;
            out.emit(&list, || {
                table(
                    &["ID", "QUESTION", "USERS"],
                    list.iter().map(|q| vec![q.id.to_string(), q.question.clone(), q.users.to_string()]).collect(),
                )
            })
        }
        QuestionCommand::Remove { id } => {
            accounts.remove_security_question(&ctx.actor, id).await?;
            out.emit(&json!({"id": id, "deleted": true}), || format!("Deleted security question {id}"))
        }
    }
}
