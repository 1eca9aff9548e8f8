//! What the listing verbs (`ps`, `images`, `network ls`, `volume ls`)
//! show, before it is printed: so that one host's is printed as docker
//! prints it, and several hosts' are merged with the host named on each
//! row.

use super::format::Table;
use super::out::{self, Verdict};

/// A listing: ids or names (`-q`), or a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    /// One per line.
    Ids(Vec<String>),
    /// A `--format` template's text per object, each ending a line.
    Lines(Vec<String>),
    /// A header and rows.
    Table {
        /// The columns' titles.
        header: Vec<String>,
        /// One per object.
        rows: Vec<Vec<String>>,
    },
}

impl Listing {
    /// A table with `header`'s titles and no rows yet.
    pub fn table(header: &[&str]) -> Listing {
        Listing::Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (to a table) or an id.
    pub fn push<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cells = cells.into_iter().map(Into::into);
        match self {
            Listing::Ids(ids) | Listing::Lines(ids) => ids.extend(cells.next()),
            Listing::Table { rows, .. } => rows.push(cells.collect()),
        }
    }

    /// The text docker prints for it.
    pub fn render(&self) -> String {
        match self {
            Listing::Ids(ids) | Listing::Lines(ids) => {
                ids.iter().map(|id| format!("{id}\n")).collect()
            }
            Listing::Table { header, rows } => {
                let mut table = Table::list(&header.iter().map(String::as_str).collect::<Vec<_>>());
                for row in rows {
                    table.row(row.iter().cloned());
                }
                table.render()
            }
        }
    }

    /// Prints it on stdout.
    pub fn print(&self) -> Verdict {
        out::stdout(self.render().as_bytes())?;
        Ok(0)
    }

    /// Several hosts' listings as one: ids as `HOST/ID` (what the verbs
    /// take back), tables with a `HOST` column first, in the hosts' order.
    pub fn merged(listings: Vec<(String, Listing)>) -> Listing {
        let mut merged: Option<Listing> = None;
        for (host, listing) in listings {
            match listing {
                Listing::Ids(ids) => {
                    let all = merged.get_or_insert_with(|| Listing::Ids(Vec::new()));
                    for id in ids {
                        all.push([format!("{host}/{id}")]);
                    }
                }
                // The template names the host if it wants (`.Host`).
                Listing::Lines(lines) => {
                    let all = merged.get_or_insert_with(|| Listing::Lines(Vec::new()));
                    for line in lines {
                        all.push([line]);
                    }
                }
                Listing::Table { header, rows } => {
                    let all = merged.get_or_insert_with(|| Listing::Table {
                        header: std::iter::once("HOST".to_owned()).chain(header).collect(),
                        rows: Vec::new(),
                    });
                    for row in rows {
                        all.push(std::iter::once(host.clone()).chain(row));
                    }
                }
            }
        }
        merged.unwrap_or(Listing::Ids(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_on_each_row_and_each_id() {
        let mut a = Listing::table(&["ID", "NAME"]);
        a.push(["1", "web"]);
        let mut b = Listing::table(&["ID", "NAME"]);
        b.push(["2", "db"]);
        b.push(["3", "cache"]);
        let merged = Listing::merged(vec![("a".into(), a), ("gpu1".into(), b)]);
        assert_eq!(
            merged.render(),
            "HOST      ID        NAME\na         1         web\ngpu1      2         db\ngpu1      3         cache\n"
        );
        let ids = Listing::merged(vec![
            ("a".into(), Listing::Ids(vec!["1".into()])),
            ("b".into(), Listing::Ids(vec!["2".into(), "3".into()])),
        ]);
        assert_eq!(ids.render(), "a/1\nb/2\nb/3\n");
        assert_eq!(Listing::merged(Vec::new()).render(), "");
    }
}
