//! Image verbs: `pull`, `images` and `rmi`.

use std::collections::HashMap;

use clap::Args;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::models::ImageSummary;
use dockwire_docker::catalog::{ImageList, ImagePull, ImageRemove, PullProgress, split_tag};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::containers::with_host;
use super::format;
use super::listing::Listing;
use super::out::{self, Stop, Verdict};
use super::template::Formatter;
use super::times;
use crate::error::Context;

// ------------------------------------------------------------------ pull

/// Download an image from a registry
#[derive(Args, Debug)]
pub struct Pull {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// The image: NAME[:TAG|@DIGEST]
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    image: String,
}

pub async fn pull(docker: &DockerClient, args: Pull) -> Verdict {
    let mut image = args.image.clone();
    if !image.contains('@') && split_tag(&image).1.is_none() {
        if !args.quiet {
            out::line("Using default tag: latest")?;
        }
        image.push_str(":latest");
    }
    let what = || format!("pull {image}");
    let input = ImagePull {
        image: image.clone(),
    };
    let mut progress = docker.subscribe(&input).await.context(what)?;
    let mut shown = if args.quiet {
        Progress::Quiet
    } else if out::stdout_is_terminal() {
        Progress::Bars(Box::new(Bars::new()))
    } else {
        Progress::Lines
    };
    while let Some(item) = progress.next().await {
        match item.context(what) {
            Ok(item) => shown.show(&item)?,
            Err(failure) => {
                shown.finish();
                return Err(failure.into());
            }
        }
    }
    shown.finish();
    out::line(full_reference(&image))?;
    Ok(0)
}

/// How pull progress is shown.
enum Progress {
    /// Nothing but the image's name at the end (`-q`).
    Quiet,
    /// Each message on its own line, without download progress: what
    /// docker prints when stdout is not a terminal.
    Lines,
    /// A line per layer, redrawn with a bar while it downloads or
    /// extracts.
    Bars(Box<Bars>),
}

impl Progress {
    fn show(&mut self, item: &PullProgress) -> Result<(), out::Stop> {
        match self {
            Progress::Quiet => Ok(()),
            Progress::Lines => match status_line(item) {
                Some(line) => out::line(line),
                None => Ok(()),
            },
            Progress::Bars(bars) => bars.show(item),
        }
    }

    fn finish(&mut self) {
        if let Progress::Bars(bars) = self {
            bars.finish();
        }
    }
}

/// A progress message as a line (`<layer>: Pull complete`), or `None` for
/// a message that only moves a progress bar.
fn status_line(item: &PullProgress) -> Option<String> {
    if item.current.unwrap_or(0) > 0 || item.total.unwrap_or(0) > 0 {
        return None;
    }
    Some(match &item.id {
        Some(id) => format!("{id}: {}", item.status),
        None => item.status.clone(),
    })
}

/// Whether a message is about one layer (its line is redrawn) rather than
/// about the pull (`latest: Pulling from …`, printed once).
fn is_layer(item: &PullProgress) -> bool {
    item.id.is_some() && !item.status.starts_with("Pulling from ")
}

/// docker's terminal display of a pull: a line per layer.
struct Bars {
    multi: MultiProgress,
    layers: HashMap<String, ProgressBar>,
    plain: ProgressStyle,
    bar: ProgressStyle,
}

impl Bars {
    fn new() -> Self {
        let plain = ProgressStyle::with_template("{prefix}: {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        // docker's bar: 50 wide, then `   1.2MB/3.4MB`.
        let bar = ProgressStyle::with_template("{prefix}: {msg} [{bar:50}] {sizes}")
            .map(|style| {
                style.progress_chars("=> ").with_key(
                    "sizes",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(
                            w,
                            "{:>8}/{}",
                            format::human_size(state.pos() as f64, 4),
                            format::human_size(state.len().unwrap_or(0) as f64, 4)
                        );
                    },
                )
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            layers: HashMap::new(),
            plain,
            bar,
        }
    }

    fn show(&mut self, item: &PullProgress) -> Result<(), out::Stop> {
        let Some(id) = item.id.as_deref().filter(|_| is_layer(item)) else {
            // The layers are done (or not begun): the line goes below them.
            self.finish();
            return match status_line(item) {
                Some(line) => out::line(line),
                None => Ok(()),
            };
        };
        let layer = self.layers.entry(id.to_owned()).or_insert_with(|| {
            let layer = self.multi.add(ProgressBar::new(0));
            layer.set_style(self.plain.clone());
            layer.set_prefix(id.to_owned());
            layer
        });
        match (item.current, item.total) {
            (Some(current), Some(total)) if total > 0 => {
                layer.set_style(self.bar.clone());
                layer.set_length(u64::try_from(total).unwrap_or(0));
                layer.set_position(u64::try_from(current).unwrap_or(0));
            }
            _ => layer.set_style(self.plain.clone()),
        }
        layer.set_message(item.status.clone());
        Ok(())
    }

    fn finish(&mut self) {
        // Abandoned, a layer's line stays as it was last drawn.
        for (_, layer) in self.layers.drain() {
            layer.abandon();
        }
    }
}

/// The image's full name, as docker prints it after a pull:
/// `docker.io/library/busybox:latest`.
fn full_reference(image: &str) -> String {
    let first = image.split('/').next().unwrap_or_default();
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        return image.to_owned();
    }
    if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    }
}

// ---------------------------------------------------------------- images

/// List images
#[derive(Args, Debug)]
pub struct Images {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Filter output based on conditions provided (e.g. dangling=true,
    /// label=KEY=VALUE, reference=NAME)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a Go template (`table …` for a table)
    #[arg(long, value_name = "TEMPLATE")]
    format: Option<String>,
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

pub async fn images(docker: &DockerClient, args: Images) -> Verdict {
    list(docker, &args, None).await?.print()
}

/// What `images` shows; `host`, on a fleet, is each object's `.Host` for
/// a `--format` template.
pub async fn list(
    docker: &DockerClient,
    args: &Images,
    host: Option<&str>,
) -> Result<Listing, Stop> {
    let format = args.format.as_deref().map(Formatter::list).transpose()?;
    let mut filters = format::filters(&args.filter)?;
    if let Some(reference) = &args.reference {
        filters
            .entry("reference".into())
            .or_default()
            .push(reference.clone());
    }
    let input = ImageList {
        all: args.all,
        filters,
    };
    let images = docker
        .query(&input)
        .await
        .context(|| "list images".into())?;
    let rows: Vec<ImageRow> = images.iter().flat_map(image_rows).collect();
    let id = |row: &ImageRow| {
        if args.no_trunc {
            row.image.id.clone()
        } else {
            format::short_id(&row.image.id).to_owned()
        }
    };
    if args.quiet {
        let mut ids = Listing::Ids(Vec::new());
        for row in &rows {
            ids.push([id(row)]);
        }
        return Ok(ids);
    }
    if let Some(format) = format {
        let now = format::unix_now();
        let items: Vec<_> = rows
            .iter()
            .map(|row| with_host(image_context(row, id(row), now), host))
            .collect();
        let titles = serde_json::json!({
            "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
            "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
            "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE",
            "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
        });
        return Ok(format.listing(&items, &with_host(titles, host))?);
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut table = Listing::table(&header);
    let now = format::unix_now();
    for row in &rows {
        let mut cells = vec![row.repository.clone(), row.tag.clone()];
        if args.digests {
            cells.push(row.digest.clone());
        }
        cells.extend([
            id(row),
            format::ago(row.image.created, now),
            format::human_size(row.image.size as f64, 3),
        ]);
        table.push(cells);
    }
    Ok(table)
}

/// An image's line as `images --format` sees it: docker's fields, each
/// the text docker shows.
fn image_context(row: &ImageRow, id: String, now: i64) -> serde_json::Value {
    let image = row.image;
    let size = |n: i64| format::human_size(n as f64, 3);
    let known = |n: i64, text: String| if n == -1 { "N/A".to_owned() } else { text };
    // API 1.44 dropped VirtualSize; it equals Size since 1.43.
    let virt = image.size;
    serde_json::json!({
        "ID": id,
        "Repository": row.repository,
        "Tag": row.tag,
        "Digest": row.digest,
        "CreatedSince": format::ago(image.created, now),
        "CreatedAt": times::go_time(image.created),
        "Size": size(image.size),
        "Containers": known(image.containers, image.containers.to_string()),
        "VirtualSize": size(virt),
        "SharedSize": known(image.shared_size, size(image.shared_size)),
        "UniqueSize": known(image.shared_size, size(virt.saturating_sub(image.shared_size))),
    })
}

/// A line of `images`: one per repository and tag of an image.
#[derive(Debug)]
struct ImageRow<'a> {
    image: &'a ImageSummary,
    repository: String,
    tag: String,
    digest: String,
}

/// An image's lines: one per tag; a repository known only by digest gets
/// a `<none>` tag; an image with neither is `<none>` `<none>`.
fn image_rows(image: &ImageSummary) -> Vec<ImageRow<'_>> {
    let none = || "<none>".to_owned();
    let tags: Vec<&str> = image
        .repo_tags
        .iter()
        .map(String::as_str)
        .filter(|t| *t != "<none>:<none>")
        .collect();
    let digests: Vec<&str> = image
        .repo_digests
        .iter()
        .map(String::as_str)
        .filter(|d| *d != "<none>@<none>")
        .collect();
    if tags.is_empty() && digests.is_empty() {
        return vec![ImageRow {
            image,
            repository: none(),
            tag: none(),
            digest: none(),
        }];
    }
    let digest_of = |repo: &str| {
        digests.iter().find_map(|d| {
            d.split_once('@')
                .filter(|(r, _)| *r == repo)
                .map(|(_, d)| d.to_owned())
        })
    };
    let mut rows = Vec::new();
    let mut repos: Vec<&str> = Vec::new();
    for reference in &tags {
        let (repo, tag) = split_tag(reference);
        repos.push(repo);
        rows.push(ImageRow {
            image,
            repository: repo.to_owned(),
            tag: tag.unwrap_or("<none>").to_owned(),
            digest: digest_of(repo).unwrap_or_else(none),
        });
    }
    for reference in &digests {
        let Some((repo, digest)) = reference.split_once('@') else {
            continue;
        };
        if repos.contains(&repo) {
            continue;
        }
        repos.push(repo);
        rows.push(ImageRow {
            image,
            repository: repo.to_owned(),
            tag: none(),
            digest: digest.to_owned(),
        });
    }
    rows
}

// ------------------------------------------------------------------- rmi

/// Remove one or more images
#[derive(Args, Debug)]
pub struct Rmi {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Images, by name or id
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

pub async fn rmi(docker: &DockerClient, args: Rmi) -> Verdict {
    let mut failed = false;
    for image in &args.images {
        let input = ImageRemove {
            image: image.clone(),
            force: args.force,
        };
        match docker
            .query(&input)
            .await
            .context(|| format!("remove image {image}"))
        {
            Ok(removed) => {
                for item in removed {
                    if let Some(deleted) = item.deleted.filter(|d| !d.is_empty()) {
                        out::line(format!("Deleted: {deleted}"))?;
                    } else if let Some(untagged) = item.untagged {
                        out::line(format!("Untagged: {untagged}"))?;
                    }
                }
            }
            Err(failure) => {
                failed = true;
                out::report(&failure);
            }
        }
    }
    Ok(i32::from(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tags: &[&str], digests: &[&str]) -> ImageSummary {
        ImageSummary {
            id: "sha256:04a773cf701d0000".into(),
            repo_tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            repo_digests: digests.iter().map(|d| (*d).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn rows(image: &ImageSummary) -> Vec<(String, String, String)> {
        image_rows(image)
            .into_iter()
            .map(|r| (r.repository, r.tag, r.digest))
            .collect()
    }

    fn row(repo: &str, tag: &str, digest: &str) -> (String, String, String) {
        (repo.into(), tag.into(), digest.into())
    }

    #[test]
    fn an_image_has_a_row_per_tag_with_its_repository_digest() {
        let i = image(
            &[
                "dockwire/testbox:latest",
                "127.0.0.1:5000/dockwire/testbox:latest",
            ],
            &["127.0.0.1:5000/dockwire/testbox@sha256:61fa"],
        );
        assert_eq!(
            rows(&i),
            [
                row("dockwire/testbox", "latest", "<none>"),
                row("127.0.0.1:5000/dockwire/testbox", "latest", "sha256:61fa"),
            ]
        );
    }

    #[test]
    fn untagged_and_dangling_images_show_none() {
        assert_eq!(rows(&image(&[], &[])), [row("<none>", "<none>", "<none>")]);
        assert_eq!(
            rows(&image(&["<none>:<none>"], &["<none>@<none>"])),
            [row("<none>", "<none>", "<none>")]
        );
        assert_eq!(
            rows(&image(&[], &["busybox@sha256:ab"])),
            [row("busybox", "<none>", "sha256:ab")]
        );
    }

    #[test]
    fn pull_lines_skip_progress_like_docker_without_a_terminal() {
        let item = |id: Option<&str>, status: &str, current: Option<i64>| PullProgress {
            id: id.map(Into::into),
            status: status.into(),
            current,
            total: current.map(|_| 100),
        };
        assert_eq!(
            status_line(&item(Some("abc"), "Pull complete", None)).as_deref(),
            Some("abc: Pull complete")
        );
        assert_eq!(
            status_line(&item(Some("abc"), "Downloading", Some(10))),
            None
        );
        assert_eq!(
            status_line(&item(None, "Digest: sha256:1", None)).as_deref(),
            Some("Digest: sha256:1")
        );
        assert!(!is_layer(&item(
            Some("latest"),
            "Pulling from dockwire/testbox",
            None
        )));
        assert!(is_layer(&item(Some("abc"), "Pulling fs layer", None)));
    }

    #[test]
    fn a_pulled_image_is_named_in_full() {
        assert_eq!(
            full_reference("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full_reference("dockwire/testbox:1"),
            "docker.io/dockwire/testbox:1"
        );
        assert_eq!(
            full_reference("127.0.0.1:5000/dockwire/testbox:latest"),
            "127.0.0.1:5000/dockwire/testbox:latest"
        );
        assert_eq!(full_reference("localhost/x:1"), "localhost/x:1");
    }
}
