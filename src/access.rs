//! How this process reaches an archive: it opens the database, or asks the daemon that holds it.
//!
//! Either way a reader asks [`store::Query`]s and gets [`store::Reply`]s: the typed helpers below
//! are what the commands, the browser and the report use.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail};
use store::{Archive, Filter, Lineage, ProblemRecord, Query, Reply, Stats, StoreError, Windows};

use crate::endpoint::{self, Client};

/// An archive opened by this process, or the endpoint of the daemon holding it.
pub enum Access {
    Local(Archive),
    Daemon(Client),
}

impl Access {
    /// The daemon's endpoint when one answers, else the database itself. An archive locked by a
    /// process that does not answer is an error naming both.
    pub fn open(db: &Path, timeout: Duration) -> anyhow::Result<Access> {
        let socket = endpoint::socket_path(db);
        if let Some(client) = Client::find(&socket, timeout)? {
            return Ok(Access::Daemon(client));
        }
        match Archive::open_existing(db) {
            Ok(a) => Ok(Access::Local(a)),
            Err(StoreError::Locked(p)) => Err(crate::exit::mark(
                crate::exit::Kind::Unavailable,
                anyhow!(
                    "archive at {} is in use by another process, and no daemon answers at {}",
                    p.display(),
                    socket.display()
                ),
            )),
            Err(StoreError::Missing(p)) => Err(anyhow!(
                "no archive at {} (a run directory's is DIR/archive: name it with --run-dir DIR, or --db DIR)",
                p.display()
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks `query`, handing each part of the answer to `reply` as it comes.
    pub fn ask(
        &self,
        query: &Query,
        reply: &mut dyn FnMut(Reply) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        match self {
            Access::Local(archive) => store::query::answer(archive, query, reply),
            Access::Daemon(client) => client.ask(query, reply),
        }
    }

    /// Each record of a page, as it comes.
    pub fn for_each_record(
        &self,
        query: &Query,
        mut each: impl FnMut(ProblemRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.ask(query, &mut |reply| match reply {
            Reply::Record(r) => each(*r),
            other => bail!("expected records, the archive answered {}", kind(&other)),
        })
    }

    /// A whole page.
    pub fn records(&self, query: &Query) -> anyhow::Result<Vec<ProblemRecord>> {
        let mut out = Vec::new();
        self.for_each_record(query, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// One record.
    pub fn record(&self, id: u64) -> anyhow::Result<ProblemRecord> {
        let mut records = self.records(&Query::Record { id })?;
        records.pop().ok_or_else(|| anyhow!("the archive answered no record for id {id}"))
    }

    pub fn lineage(&self, id: u64, depth: usize) -> anyhow::Result<Lineage> {
        let mut found = None;
        self.ask(&Query::Lineage { id, depth }, &mut |reply| match reply {
            Reply::Lineage(l) => {
                found = Some(*l);
                Ok(())
            }
            other => bail!("expected a lineage, the archive answered {}", kind(&other)),
        })?;
        found.ok_or_else(|| anyhow!("the archive answered no lineage for id {id}"))
    }

    /// The statistics of the matches, and per window of `window` rounds when asked.
    pub fn stats(&self, filter: &Filter, window: Option<u64>) -> anyhow::Result<(Stats, Option<Windows>)> {
        let mut found = None;
        self.ask(&Query::Stats { filter: filter.clone(), window }, &mut |reply| match reply {
            Reply::Stats { stats, windows } => {
                found = Some((*stats, windows));
                Ok(())
            }
            other => bail!("expected statistics, the archive answered {}", kind(&other)),
        })?;
        found.ok_or_else(|| anyhow!("the archive answered no statistics"))
    }
}

/// What a reply is, for an error message.
fn kind(reply: &Reply) -> &'static str {
    match reply {
        Reply::Record(_) => "a record",
        Reply::Lineage(_) => "a lineage",
        Reply::Stats { .. } => "statistics",
    }
}
