//! `gatehouse licensing …`: the vendor's side of licensing — a signing key, the keys issued,
//! and the server installs verify against. None of it reads an install's configuration: it is
//! run by whoever sells gatehouse (or an operator who is their own vendor, or a test).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::Output;
use super::output::table;
use crate::error::{Error, Result};
use crate::license::protocol::{Binding, Status};
use crate::license::vendor::{self, Registry};

#[derive(Debug, Subcommand)]
pub enum LicensingCommand {
    /// Create the vendor's signing key (private, mode 0600) and print its public half — the
    /// `license.public_key` of the installs, or `GATEHOUSE_LICENSE_PUBLIC_KEY` when building gatehouse
    Keygen {
        #[command(flatten)]
        key: SigningKeyArg,
    },
    /// Issue a license key (bound in advance to what is given; else its first web verification binds it)
    Issue {
        #[command(flatten)]
        db: DbArg,
        /// Domain (system_url's host) the key is licensed for; repeatable
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        /// IP the install reaches the licensing server from; repeatable
        #[arg(long = "ip", value_name = "IP")]
        ips: Vec<String>,
        /// Install directory (where its gatehouse.yaml is); repeatable
        #[arg(long = "directory", value_name = "DIR")]
        directories: Vec<String>,
    },
    /// List the issued keys (by id) with their status and binding
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Answer verifications on POST /v1/verify until SIGINT/SIGTERM (put TLS in front of it)
    Serve {
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        key: SigningKeyArg,
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:8470")]
        listen: String,
    },
    /// Free a key's binding after the install moved: its next web verification binds it again
    Reissue {
        #[command(flatten)]
        db: DbArg,
        /// The key, or its id
        key: String,
    },
    /// Suspend a key: installs using it lock their admin functions at their next verification
    Suspend {
        #[command(flatten)]
        db: DbArg,
        key: String,
        /// What the install is told
        #[arg(long, default_value = "suspended by the vendor")]
        reason: String,
    },
    /// Make a suspended key active again
    Resume {
        #[command(flatten)]
        db: DbArg,
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct DbArg {
    /// The vendor's database (SQLite, created on first use)
    #[arg(id = "db", long = "db", default_value = "licensing.db", value_name = "FILE")]
    path: PathBuf,
}

#[derive(Debug, Args)]
pub struct SigningKeyArg {
    /// The vendor's private signing key
    #[arg(id = "signing_key", long = "signing-key", default_value = "licensing.key", value_name = "FILE")]
    path: PathBuf,
}

pub async fn run(command: LicensingCommand, out: &Output) -> Result<()> {
    match command {
        LicensingCommand::Keygen { key } => {
            let public = vendor::keygen(&key.path)?;
            out.emit(&json!({"signing_key": key.path, "public_key": public}), || {
                format!(
                    "Wrote the signing key to {} (keep it private; it signs every answer).\n\
                     Public key (license.public_key, or GATEHOUSE_LICENSE_PUBLIC_KEY at build time):\n{public}",
                    key.path.display()
                )
            })
        }
        LicensingCommand::Issue { db, domains, ips, directories } => {
            let registry = Registry::open(&db.path).await?;
            let (key, issued) = registry.issue(&Binding { domains, ips, directories }).await?;
            out.emit(&json!({"key": key.as_str(), "license": issued}), || {
                format!("{}\nid {}; {}", key.as_str(), issued.key_id, describe(&issued.binding()))
            })
        }
        LicensingCommand::List { db } => {
            let issued = Registry::open(&db.path).await?.list().await?;
            out.emit(&issued, || {
                let rows = issued
                    .iter()
                    .map(|l| vec![l.key_id.clone(), l.status.clone(), describe(&l.binding()), l.reason.clone()])
                    .collect();
                table(&["KEY ID", "STATUS", "BINDING", "REASON"], rows)
            })
        }
        LicensingCommand::Serve { db, key, listen } => {
            let registry = Registry::open(&db.path).await?;
            let signing = vendor::signing_key(&key.path)?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| Error::Unavailable(format!("cannot listen on {listen}: {e}")))?;
            let local = listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
            // Printed for scripts that started it on port 0.
            println!("licensing server listening on http://{local}");
            crate::web::vendor::serve(registry, signing, listener, crate::web::shutdown_signal()).await
        }
        LicensingCommand::Reissue { db, key } => {
            let issued = Registry::open(&db.path).await?.reissue(&key).await?;
            out.emit(&issued, || format!("{} is unbound: its next web verification binds it", issued.key_id))
        }
        LicensingCommand::Suspend { db, key, reason } => {
            let issued = Registry::open(&db.path).await?.set_status(&key, Status::Suspended, &reason).await?;
            out.emit(&issued, || format!("{} is suspended: {reason}", issued.key_id))
        }
        LicensingCommand::Resume { db, key } => {
            let issued = Registry::open(&db.path).await?.set_status(&key, Status::Active, "").await?;
            out.emit(&issued, || format!("{} is active", issued.key_id))
        }
    }
}

fn describe(binding: &Binding) -> String {
    match binding.to_string().as_str() {
        "not bound" => "not bound (its first web verification binds it)".into(),
        bound => format!("bound to {bound}"),
    }
}
