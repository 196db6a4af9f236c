//! `cx repository list|activate|rollback`: the model repository's bundles
//! and versions, and which version a bundle serves (`docs/REPOSITORY.md`).
//! These change only the ACTIVE and HISTORY files; a running `cx serve
//! --repository` serves the change after its next reload (SIGHUP, or `POST
//! /admin/reload` on its admin port).

use crate::error::{Error, Result};
use crate::repository::active::{read_active, read_history, Activation};
use crate::repository::Repository;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// The `cx repository` commands.
#[derive(Debug, Subcommand)]
pub enum RepositoryCommand {
    /// Print each bundle's versions, the active one and the history, one
    /// JSON line per bundle.
    List(ListArgs),
    /// Make VERSION the bundle's active version (recording the one before
    /// for rollback); reload the server to serve it.
    Activate(ActivateArgs),
    /// Make the version active before the current one active again; reload
    /// the server to serve it.
    Rollback(BundleArgs),
}

/// Which repository and bundle.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The repository directory (NAME/VERSION/ bundles).
    #[arg(long, value_name = "DIR")]
    pub repository: PathBuf,
    /// The bundle [default: the repository's only bundle].
    #[arg(long, value_name = "NAME")]
    pub bundle: Option<String>,
}

/// Arguments of `cx repository list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The repository directory (NAME/VERSION/ bundles).
    #[arg(long, value_name = "DIR")]
    pub repository: PathBuf,
    /// Only this bundle [default: every bundle].
    #[arg(long, value_name = "NAME")]
    pub bundle: Option<String>,
}

/// Arguments of `cx repository activate`.
#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// Which repository and bundle.
    #[command(flatten)]
    pub target: BundleArgs,
    /// The version to serve (a directory NAME/VERSION/).
    #[arg(value_name = "VERSION")]
    pub to: String,
}

/// Runs a `cx repository` command.
pub fn execute(command: &RepositoryCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        RepositoryCommand::List(args) => list(args, out),
        RepositoryCommand::Activate(args) => {
            let (repo, name) = open(&args.target)?;
            let done = repo.activate(&name, &args.to)?;
            report(out, &name, &done)
        }
        RepositoryCommand::Rollback(args) => {
            let (repo, name) = open(args)?;
            let done = repo.rollback(&name)?;
            report(out, &name, &done)
        }
    }
}

fn open(args: &BundleArgs) -> Result<(Repository, String)> {
    let repo = Repository::open(&args.repository)?;
    let name = match &args.bundle {
        Some(name) => name.clone(),
        None => repo.only_bundle()?,
    };
    Ok((repo, name))
}

fn list(args: &ListArgs, out: &mut dyn Write) -> Result<()> {
    let repo = Repository::open(&args.repository)?;
    let names = match &args.bundle {
        Some(name) => vec![name.clone()],
        None => repo.bundles()?,
    };
    for name in names {
        let dir = repo.bundle_dir(&name)?;
        let line = serde_json::json!({
            "bundle": name,
            "versions": repo.versions(&name)?,
            "active": repo.active_version(&name)?,
            "active_file": read_active(&dir)?.is_some(),
            "history": read_history(&dir)?,
        });
        writeln!(out, "{line}").map_err(Error::Output)?;
    }
    Ok(())
}

fn report(out: &mut dyn Write, name: &str, done: &Activation) -> Result<()> {
    let line = serde_json::json!({
        "bundle": name,
        "from": done.from,
        "active": done.to,
        "next": "reload the server to serve it: kill -HUP <pid>, or curl -X POST <admin>/admin/reload",
    });
    writeln!(out, "{line}").map_err(Error::Output)
}
