//! `gatehouse completions SHELL` and `gatehouse man [DIR]`: generated from the command-line
//! definition itself, so they never fall behind it.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::Cli;
use crate::error::{Error, Result};

#[derive(Debug, Args)]
#[command(after_help = "Install, e.g.:\n  \
gatehouse completions bash > /etc/bash_completion.d/gatehouse\n  \
gatehouse completions zsh > \"${fpath[1]}/_gatehouse\"\n  \
gatehouse completions fish > ~/.config/fish/completions/gatehouse.fish")]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn completions(args: CompletionsArgs) -> Result<()> {
    clap_complete::generate(args.shell, &mut Cli::command(), "gatehouse", &mut std::io::stdout());
    Ok(())
}

#[derive(Debug, Args)]
#[command(after_help = "Install, e.g.: gatehouse man /usr/local/share/man/man1 && mandb")]
pub struct ManArgs {
    /// Write one page per command here (gatehouse.1, gatehouse-doctor.1, …); without it, print
    /// the main page to stdout
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn man(args: ManArgs) -> Result<()> {
    let command = Cli::command();
    let Some(dir) = args.dir else {
        return match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
            // `gatehouse man | head` closing the pipe early is not a failure.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(Error::Internal(format!("cannot write the man page: {e}")))
            }
            _ => Ok(()),
        };
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::Usage(format!("cannot create {}: {e}", dir.display())))?;
    clap_mangen::generate_to(command, &dir)
        .map_err(|e| Error::Usage(format!("cannot write man pages into {}: {e}", dir.display())))?;
    Ok(())
}
