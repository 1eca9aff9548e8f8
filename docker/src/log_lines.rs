//! `container/logs`' items: the engine's log frames made into one item per
//! line, whole; and on Podman, a followed log read without Podman's
//! follow, which loses lines.
//!
//! Two things in Podman 4.3's compatible API break "one item per line,
//! every line" for its callers, and the service mends both here:
//!
//! - **Pieces of a line.** conmon writes a line that straddles its read
//!   buffer as pieces (k8s-file's `P` entries), and Podman sends each piece
//!   as a frame of its own, with its own timestamp and no newline.
//!   [`Lines`] joins the frames of one stream until a newline, up to
//!   [`LINE_PIECE`] bytes: longer lines come in pieces of about that size,
//!   as Docker itself splits lines of 16 KiB.
//! - **A followed log loses lines.** Podman follows the log file with a
//!   tailer that, on reaching the end in the middle of a line, sends that
//!   half line and jumps to the file's end, past whatever was written
//!   meanwhile; and when the container exits while the reader lags, it
//!   ends with what it had sent. A read without follow is complete. So on
//!   Podman the service follows by reading again ([`PodmanFollow`]): the
//!   call's own read without follow, then, until the container has ended,
//!   every 50 ms to 0.5 s (longer while nothing comes) the log's last
//!   lines since a second before the last frame delivered (Podman's
//!   timestamps are whole seconds), passing on only what comes after the
//!   frames already delivered ([`Seen`], [`Skipper`]). One last read
//!   follows the container's end. Each read asks for the last 1,000 lines,
//!   or 8,000 when that does not reach back to the last frame delivered,
//!   else the whole log since that second (Podman's reads of the last N
//!   lines slow down with the square of N). While the container runs, a
//!   read's last frame written in the last second or two waits for the
//!   next read, and a read Podman fails on a line being written is asked
//!   again: the tailer may meet a line half written.
//!
//! Docker needs neither: its follow sends every line, and its pieces (of
//! lines over 16 KiB) are already [`LINE_PIECE`] long, so [`Lines`]
//! passes them as they are.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters as q;
use bytes::BytesMut;
use chrono::{DateTime, FixedOffset};
use dockwire_core::CallError;
use futures::{Stream, StreamExt as _, TryStreamExt as _, stream};

use crate::catalog::{CONTAINER_NOT_FOUND, ContainerLogs, Data, LogItem, StreamName};
use crate::dialect::{self, Dialect};
use crate::error;
use crate::stdio::split_output;

/// The most bytes of one line an item holds: a longer line comes in
/// pieces of about this size (Docker's own split of long lines).
pub(crate) const LINE_PIECE: usize = 16 * 1024;

/// `container/logs`' items for the container `i.id` (resolved), from an
/// engine that speaks `dialect`.
pub(crate) fn log_lines(
    docker: Docker,
    i: ContainerLogs,
    dialect: Dialect,
) -> impl Stream<Item = Result<LogItem, CallError>> + Send + 'static {
    if i.follow && dialect == Dialect::Podman {
        return Lines::new(PodmanFollow::new(docker, i).frames()).left_stream();
    }
    Lines::new(read(&docker, &i, options(&i))).right_stream()
}

/// The engine's log read of `i.id` with `options`.
fn read(
    docker: &Docker,
    i: &ContainerLogs,
    options: q::LogsOptions,
) -> impl Stream<Item = Result<LogOutput, CallError>> + Send + 'static + use<> {
    docker.logs(&i.id, Some(options)).map_err(error::container)
}

/// The engine's options for the call's own read.
fn options(i: &ContainerLogs) -> q::LogsOptions {
    q::LogsOptions {
        follow: i.follow,
        stdout: true,
        stderr: true,
        since: clamp_time(i.since),
        until: clamp_time(i.until),
        timestamps: true,
        tail: i.tail.map_or_else(|| "all".into(), |n| n.to_string()),
    }
}

/// Docker's log times are 32-bit Unix seconds; 0 means "no bound".
fn clamp_time(t: Option<i64>) -> i32 {
    t.map_or(0, |t| t.clamp(0, i64::from(i32::MAX)) as i32)
}

/// The first pause between two reads of a Podman follow, and the
/// longest (it doubles while nothing new comes).
const FOLLOW_PAUSE: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(500));
/// The lines a Podman follow's read asks for first, and the most before
/// it reads the whole log since its second instead.
const FOLLOW_WINDOW: (usize, usize) = (1_000, 8_000);
/// The bytes of one window held to check it before passing it on; a
/// larger one is read again whole, as a stream.
const FOLLOW_WINDOW_BYTES: usize = 4 << 20;

/// A followed log on Podman, read again until the container has ended
/// (see the module's docs).
struct PodmanFollow {
    docker: Docker,
    i: ContainerLogs,
    /// What was read so far: where the next read goes on from.
    seen: Arc<Mutex<Seen>>,
    /// Unix second the call began, less one: where the reads go on from
    /// while nothing has been read.
    began: i64,
    pause: Duration,
    /// The frames read before the last read began.
    frames_before: usize,
}

/// One read's frames: held (a checked window) or streamed.
type Frames = futures::stream::BoxStream<'static, Result<LogOutput, CallError>>;

impl PodmanFollow {
    fn new(docker: Docker, i: ContainerLogs) -> Self {
        PodmanFollow {
            docker,
            i,
            seen: Arc::new(Mutex::new(Seen::default())),
            began: unix_now() - 1,
            pause: FOLLOW_PAUSE.0,
            frames_before: 0,
        }
    }

    /// All frames of the follow: the call's own read without follow, then
    /// the reads again, each passing on only what is new.
    fn frames(self) -> impl Stream<Item = Result<LogOutput, CallError>> + Send + 'static {
        let mut first = options(&self.i);
        first.follow = false;
        let own = self.recorded(read(&self.docker, &self.i, first).boxed());
        let again = stream::unfold(Some(self), |state| async move {
            let mut this = state?;
            if this.seen().failed {
                // A read failed: its error ends the call.
                return None;
            }
            this.pause = this.next_pause();
            tokio::time::sleep(this.pause).await;
            let running = match dialect::inspect_container(&this.docker, &this.i.id).await {
                Ok(info) => info.state.and_then(|s| s.running) == Some(true),
                // Removed, or the engine is gone: one last read says which.
                Err(_) => false,
            };
            this.frames_before = this.seen().frames;
            let frames = match this.window(running).await {
                Ok(frames) => this.recorded(frames),
                // Removed since (`--rm`): the follow ends, as Docker's.
                Err(e) if !running && e.code == CONTAINER_NOT_FOUND => return None,
                Err(e) => return Some((stream::once(std::future::ready(Err(e))).boxed(), None)),
            };
            // Once the container has ended, this read was the last.
            Some((frames, running.then_some(this)))
        })
        .flatten();
        own.chain(again)
    }

    fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The pause before the next read: the first after a read that brought
    /// frames, else twice the last, at most the longest.
    fn next_pause(&self) -> Duration {
        if self.seen().frames > self.frames_before {
            FOLLOW_PAUSE.0
        } else {
            (self.pause * 2).min(FOLLOW_PAUSE.1)
        }
    }

    /// `frames`, each recorded in `seen` as it passes.
    fn recorded(&self, frames: Frames) -> Frames {
        let seen = self.seen.clone();
        frames
            .inspect(move |frame| {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                match frame {
                    Ok(frame) => seen.record(&timestamp_of(frame)),
                    Err(_) => seen.failed = true,
                }
            })
            .boxed()
    }

    /// The frames after those already read: the log's last lines since a
    /// second before the last frame read, enough of them to reach back to
    /// it, with what was read left out. While the container runs, a last
    /// frame written in this second or the one before waits for the next
    /// read: Podman may have read it half written.
    async fn window(&self, running: bool) -> Result<Frames, CallError> {
        let seen = self.seen();
        let since = seen.last_second().map_or(self.began, |s| s - 1);
        let mut options = options(&self.i);
        options.follow = false;
        options.since = options.since.max(clamp_time(Some(since)));
        let recent = running.then(|| unix_now() - 1);
        let mut lines = FOLLOW_WINDOW.0;
        while lines <= FOLLOW_WINDOW.1 {
            options.tail = lines.to_string();
            match self.held(&options, lines).await {
                Ok(Some(held)) => {
                    let mut skip = seen.skipper();
                    let new = held
                        .into_iter()
                        .filter(move |frame| !skip.skips(&timestamp_of(frame)))
                        .map(Ok);
                    return Ok(hold_back_recent(stream::iter(new), recent));
                }
                Ok(None) => lines *= 8,
                // Podman fails a read whose last line is being written;
                // the next read has it whole.
                Err(e) if running && e.message.contains(HALF_WRITTEN) => {
                    return Ok(stream::empty().boxed());
                }
                Err(e) => return Err(e),
            }
        }
        // Too many lines since that second, or too large: all since it.
        options.tail = "all".into();
        let mut skip = seen.skipper();
        let new = read(&self.docker, &self.i, options)
            .try_filter(move |frame| std::future::ready(!skip.skips(&timestamp_of(frame))));
        Ok(hold_back_recent(new, recent))
    }

    /// A window of the last `lines` lines under `options`, held, if it
    /// reaches back past the second it starts from (fewer whole lines than
    /// asked: `since`, not `tail`, cut it) and fits in
    /// [`FOLLOW_WINDOW_BYTES`]; `None` if not.
    async fn held(
        &self,
        options: &q::LogsOptions,
        lines: usize,
    ) -> Result<Option<Vec<LogOutput>>, CallError> {
        let mut frames = read(&self.docker, &self.i, options.clone());
        let (mut held, mut bytes, mut whole) = (Vec::new(), 0, 0);
        while let Some(frame) = frames.next().await {
            let frame = frame?;
            bytes += frame.as_ref().len();
            if bytes > FOLLOW_WINDOW_BYTES {
                return Ok(None);
            }
            whole += usize::from(frame.as_ref().ends_with(b"\n"));
            held.push(frame);
        }
        Ok((whole < lines).then_some(held))
    }
}

/// What Podman says of a log line it read half written.
const HALF_WRITTEN: &str = "is not a valid container log line";

/// The Unix second now.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `frames` without their last one when it was written in the second
/// `recent` or later (its timestamp says so): that one may have been read
/// half written, and a later read gives it again. `None`: all pass.
fn hold_back_recent(
    frames: impl Stream<Item = Result<LogOutput, CallError>> + Send + 'static,
    recent: Option<i64>,
) -> Frames {
    let Some(recent) = recent else {
        return frames.boxed();
    };
    // Fused: the step after the end asks again, and gets the end again.
    let frames = frames.fuse().boxed();
    stream::unfold(
        (frames, None::<LogOutput>),
        move |(mut frames, pending)| async move {
            match frames.next().await {
                Some(Ok(frame)) => {
                    // The pending frame is not the last: it passes.
                    let out = pending.map(Ok);
                    Some((out, (frames, Some(frame))))
                }
                Some(Err(e)) => Some((Some(Err(e)), (frames, pending))),
                None => {
                    let last = pending?;
                    let written = parse_time(&timestamp_of(&last)).map(|t| t.timestamp());
                    let held_back = written.is_none_or(|second| second >= recent);
                    let out = (!held_back).then_some(Ok(last));
                    Some((out, (frames, None)))
                }
            }
        },
    )
    .filter_map(std::future::ready)
    .boxed()
}

/// What a follow has read so far: the last frame's timestamp, how many
/// frames in a row carried it, and how many frames in all.
#[derive(Clone, Debug, Default, PartialEq)]
struct Seen {
    last: Option<String>,
    count: usize,
    frames: usize,
    /// A read ended with an error: the follow ends with it.
    failed: bool,
}

impl Seen {
    fn record(&mut self, timestamp: &str) {
        self.frames += 1;
        if self.last.as_deref() == Some(timestamp) {
            self.count += 1;
        } else {
            self.last = Some(timestamp.to_owned());
            self.count = 1;
        }
    }

    /// The Unix second of the last frame read.
    fn last_second(&self) -> Option<i64> {
        self.last
            .as_deref()
            .and_then(parse_time)
            .map(|t| t.timestamp())
    }

    /// What leaves out, of a read again, the frames already read.
    fn skipper(&self) -> Skipper {
        Skipper {
            last: self.last.clone(),
            last_time: self.last.as_deref().and_then(parse_time),
            left: self.count,
            done: self.last.is_none(),
        }
    }
}

/// Leaves out the frames before the last one read, then as many
/// carrying its timestamp as were read; passes everything after.
#[derive(Debug)]
struct Skipper {
    last: Option<String>,
    last_time: Option<DateTime<FixedOffset>>,
    left: usize,
    done: bool,
}

impl Skipper {
    fn skips(&mut self, timestamp: &str) -> bool {
        if self.done {
            return false;
        }
        if self.last.as_deref() == Some(timestamp) {
            if self.left > 0 {
                self.left -= 1;
                return true;
            }
            self.done = true;
            return false;
        }
        let earlier = match (parse_time(timestamp), self.last_time) {
            (Some(this), Some(last)) => this < last,
            // Not a time: a frame the first read delivered as well.
            _ => false,
        };
        if !earlier {
            self.done = true;
        }
        earlier
    }
}

fn parse_time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

/// A frame's timestamp: what comes before its first space.
fn timestamp_of(frame: &LogOutput) -> String {
    String::from_utf8_lossy(split_timestamp(frame.as_ref()).0).into_owned()
}

/// Splits `<timestamp> <text>`, as the engine writes each frame when
/// asked for timestamps.
fn split_timestamp(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(space) => (&bytes[..space], &bytes[space + 1..]),
        None => (&bytes[..0], bytes),
    }
}

/// A line begun and not yet ended: its stream, its first piece's
/// timestamp and its bytes so far.
struct Open {
    stream: StreamName,
    timestamp: String,
    text: BytesMut,
}

impl Open {
    fn item(self) -> LogItem {
        LogItem {
            stream: self.stream,
            timestamp: self.timestamp,
            data: Data::from_bytes(&self.text),
        }
    }
}

/// Log frames made into one item per line (see the module's docs): the
/// frames of one stream joined until a newline or [`LINE_PIECE`] bytes; a
/// frame of the other stream, an error or the end pass the open line on
/// as it is.
pub(crate) struct Lines<S> {
    frames: Pin<Box<S>>,
    open: Option<Open>,
    ready: VecDeque<Result<LogItem, CallError>>,
    ended: bool,
}

impl<S> Lines<S>
where
    S: Stream<Item = Result<LogOutput, CallError>>,
{
    pub(crate) fn new(frames: S) -> Self {
        Lines {
            frames: Box::pin(frames),
            open: None,
            ready: VecDeque::new(),
            ended: false,
        }
    }

    fn close_open(&mut self) {
        if let Some(open) = self.open.take() {
            self.ready.push_back(Ok(open.item()));
        }
    }

    fn take_frame(&mut self, frame: LogOutput) {
        let (stream, bytes) = split_output(frame);
        let (timestamp, text) = split_timestamp(&bytes);
        if self.open.as_ref().is_some_and(|open| open.stream != stream) {
            self.close_open();
        }
        let open = self.open.get_or_insert_with(|| Open {
            stream,
            timestamp: String::from_utf8_lossy(timestamp).into_owned(),
            text: BytesMut::new(),
        });
        open.text.extend_from_slice(text);
        if open.text.ends_with(b"\n") || open.text.len() >= LINE_PIECE {
            self.close_open();
        }
    }
}

impl<S> Stream for Lines<S>
where
    S: Stream<Item = Result<LogOutput, CallError>>,
{
    type Item = Result<LogItem, CallError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Poll::Ready(Some(item));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match self.frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => self.take_frame(frame),
                Poll::Ready(Some(Err(e))) => {
                    self.close_open();
                    self.ready.push_back(Err(e));
                }
                Poll::Ready(None) => {
                    self.close_open();
                    self.ended = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::FutureExt as _;

    fn out(text: &str) -> Result<LogOutput, CallError> {
        Ok(LogOutput::StdOut {
            message: Bytes::copy_from_slice(text.as_bytes()),
        })
    }

    fn err(text: &str) -> Result<LogOutput, CallError> {
        Ok(LogOutput::StdErr {
            message: Bytes::copy_from_slice(text.as_bytes()),
        })
    }

    fn lines(frames: Vec<Result<LogOutput, CallError>>) -> Vec<(StreamName, String, String)> {
        Lines::new(stream::iter(frames))
            .try_collect::<Vec<_>>()
            .now_or_never()
            .expect("frames that are all there")
            .unwrap()
            .into_iter()
            .map(|item| {
                let text = String::from_utf8(item.data.to_bytes().unwrap().to_vec()).unwrap();
                (item.stream, item.timestamp, text)
            })
            .collect()
    }

    #[test]
    fn a_log_line_gives_its_timestamp_apart_from_its_text() {
        let got = lines(vec![err("2026-11-23T10:00:00.1Z hello world\n")]);
        let want = (
            StreamName::Stderr,
            "2026-11-23T10:00:00.1Z".to_owned(),
            "hello world\n".to_owned(),
        );
        assert_eq!(got, vec![want]);
        let binary = Lines::new(stream::iter(vec![Ok(LogOutput::StdOut {
            message: Bytes::from_static(b"2026-11-23T10:00:00.1Z \xff\n"),
        })]));
        let items = binary
            .try_collect::<Vec<_>>()
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(items[0].data.to_bytes().unwrap().as_ref(), b"\xff\n");
    }

    /// Podman's pieces of `1042\n` (its timestamps have whole seconds).
    #[test]
    fn the_pieces_of_a_line_come_as_one_item_with_the_first_timestamp() {
        let got = lines(vec![
            out("2026-12-08T00:50:38Z 1041\n"),
            out("2026-12-08T00:50:38Z 104"),
            out("2026-12-08T00:50:39Z 2\n"),
            out("2026-12-08T00:50:39Z 1043\n"),
        ]);
        let want = |ts: &str, text: &str| (StreamName::Stdout, ts.to_owned(), text.to_owned());
        assert_eq!(
            got,
            vec![
                want("2026-12-08T00:50:38Z", "1041\n"),
                want("2026-12-08T00:50:38Z", "1042\n"),
                want("2026-12-08T00:50:39Z", "1043\n"),
            ]
        );
    }

    #[test]
    fn another_stream_an_error_or_the_end_pass_an_open_line_on_as_it_is() {
        let got = lines(vec![
            out("t1 half"),
            err("t2 other\n"),
            out("t3 rest\n"),
            out("t4 no newline at the end"),
        ]);
        let texts: Vec<_> = got.iter().map(|(s, _, t)| (*s, t.as_str())).collect();
        assert_eq!(
            texts,
            vec![
                (StreamName::Stdout, "half"),
                (StreamName::Stderr, "other\n"),
                (StreamName::Stdout, "rest\n"),
                (StreamName::Stdout, "no newline at the end"),
            ]
        );
        let failed = Lines::new(stream::iter(vec![
            out("t1 half"),
            Err(CallError::new(crate::catalog::DOCKER_ERROR, "gone")),
        ]))
        .collect::<Vec<_>>()
        .now_or_never()
        .unwrap();
        assert_eq!(failed.len(), 2);
        assert!(matches!(&failed[0], Ok(item) if item.data == Data::Text("half".into())));
        assert!(failed[1].is_err());
    }

    #[test]
    fn a_line_longer_than_a_piece_comes_in_pieces_of_that_size() {
        let piece = "x".repeat(8 * 1024);
        let frames = (0..5).map(|_| out(&format!("t {piece}"))).collect();
        let got = lines(frames);
        let sizes: Vec<usize> = got.iter().map(|(_, _, t)| t.len()).collect();
        assert_eq!(sizes, vec![LINE_PIECE, LINE_PIECE, 8 * 1024]);
        // Docker's own pieces are already that long: they pass as they are.
        let docker_piece = "y".repeat(LINE_PIECE);
        let got = lines(vec![out(&format!("t {docker_piece}")), out("t end\n")]);
        let sizes: Vec<usize> = got.iter().map(|(_, _, t)| t.len()).collect();
        assert_eq!(sizes, vec![LINE_PIECE, 4]);
    }

    #[test]
    fn a_read_again_skips_what_was_read_and_passes_the_rest() {
        let mut seen = Seen::default();
        for ts in [
            "2026-12-08T00:50:38Z",
            "2026-12-08T00:50:39Z",
            "2026-12-08T00:50:39Z",
        ] {
            seen.record(ts);
        }
        assert_eq!((seen.count, seen.frames), (2, 3));
        // 2026-12-08T00:50:39Z is 1796691039.
        assert_eq!(seen.last_second(), Some(1_796_691_039));
        let mut skip = seen.skipper();
        let passed: Vec<bool> = [
            "2026-12-08T00:50:38Z",
            "2026-12-08T00:50:39Z",
            "2026-12-08T00:50:39Z",
            "2026-12-08T00:50:39Z",
            "2026-12-08T00:50:40Z",
            "2026-12-08T00:50:38Z",
        ]
        .iter()
        .map(|ts| !skip.skips(ts))
        .collect();
        assert_eq!(passed, vec![false, false, false, true, true, true]);
    }

    #[test]
    fn with_nothing_read_a_read_again_passes_everything() {
        let seen = Seen::default();
        assert_eq!(seen.last_second(), None);
        let mut skip = seen.skipper();
        assert!(!skip.skips("2026-12-08T00:50:38Z"));
        assert!(!skip.skips(""));
    }

    #[test]
    fn a_last_frame_written_lately_waits_for_the_next_read() {
        let frames = |last: &str| {
            stream::iter(vec![
                out("2026-12-08T00:50:37Z one\n"),
                out(&format!("{last} two\n")),
            ])
        };
        let passed = |recent: Option<i64>, last: &str| -> usize {
            hold_back_recent(frames(last), recent)
                .collect::<Vec<_>>()
                .now_or_never()
                .unwrap()
                .len()
        };
        // 2026-12-08T00:50:39Z is 1796691039.
        let recent = Some(1_796_691_039);
        assert_eq!(passed(recent, "2026-12-08T00:50:39Z"), 1, "held back");
        assert_eq!(passed(recent, "2026-12-08T00:50:40Z"), 1, "held back");
        assert_eq!(passed(recent, "not a time"), 1, "held back");
        assert_eq!(passed(recent, "2026-12-08T00:50:38Z"), 2, "old enough");
        assert_eq!(
            passed(None, "2026-12-08T00:50:39Z"),
            2,
            "the container has ended"
        );
    }

    /// A stream that panics when asked again after its end, as some do.
    #[test]
    fn holding_back_never_asks_an_ended_stream_again() {
        let once = stream::unfold(false, |ended| async move {
            assert!(!ended, "asked again after its end");
            None::<(Result<LogOutput, CallError>, bool)>
        });
        let frames = stream::iter(vec![out("2026-12-08T00:50:37Z one\n")]).chain(once);
        let got = hold_back_recent(frames, Some(1_796_691_039))
            .collect::<Vec<_>>()
            .now_or_never()
            .unwrap();
        assert_eq!(got.len(), 1);
    }
}
