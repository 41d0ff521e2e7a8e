//! The file source's reading: regular files matching a pattern in the connection's `dir`,
//! and their JSONL/CSV lines from a byte offset (the engine's file source drives it).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A file a source reads: where it is, the key its cursor is stored under, and the path
/// [`open_within`] opens it by (relative to the connection's directory; a symlink's
/// target's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub key: String,
    pub within: PathBuf,
}

/// Why an entry of a watched directory is not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Skipped {
    /// A FIFO, socket or device: opening or reading it could block for ever.
    Special(&'static str),
    /// A symlink whose target lies outside the connection's directory.
    Outside(PathBuf),
    /// A symlink that resolves to nothing.
    Dangling,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::Special(kind) => write!(f, "it is a {kind}, not a regular file"),
            Skipped::Outside(target) => write!(
                f,
                "it is a symlink to `{}`, outside the connection's directory",
                target.display()
            ),
            Skipped::Dangling => write!(f, "it is a symlink to nothing"),
        }
    }
}

/// What a look at a watched directory found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Regular files to read, once each (a symlink and its target share one entry), by
    /// key.
    pub files: Vec<Found>,
    /// Entries matching the pattern that are not read, and why.
    pub skipped: Vec<(PathBuf, Skipped)>,
    /// Files whose name is not UTF-8 (read under an escaped key).
    pub not_utf8: Vec<Found>,
    /// Why the directory could not be listed, if it could not.
    pub unreadable: Option<std::io::Error>,
}

/// Files in `dir` whose name matches `pattern` (`*` wildcards; an optional sub-folder).
/// A symlink is followed only to a regular file inside `dir`; special files are skipped.
pub fn matching_files(dir: &Path, pattern: &str) -> Listing {
    let (sub, name_pattern) = match pattern.rsplit_once('/') {
        Some((sub, name)) => (dir.join(sub), name),
        None => (dir.to_path_buf(), pattern),
    };
    let mut listing = Listing::default();
    let root = match dir.canonicalize() {
        Ok(root) => root,
        Err(err) => {
            listing.unreadable = Some(err);
            return listing;
        }
    };
    // The pattern's folder may itself be a symlink: it is listed only inside `dir`.
    let folder = match sub.canonicalize() {
        Ok(real) if real.starts_with(&root) => {
            real.strip_prefix(&root).unwrap_or(&real).to_path_buf()
        }
        Ok(real) => {
            listing.unreadable = Some(std::io::Error::other(format!(
                "the pattern's folder resolves to `{}`, outside the connection's directory",
                real.display()
            )));
            return listing;
        }
        Err(err) => {
            listing.unreadable = Some(err);
            return listing;
        }
    };
    let entries = match std::fs::read_dir(&sub) {
        Ok(entries) => entries,
        Err(err) => {
            listing.unreadable = Some(err);
            return listing;
        }
    };
    let mut by_target: BTreeMap<PathBuf, Found> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = escaped(entry.file_name().as_encoded_bytes());
        if !wildcard(name_pattern, &name) {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let found = if kind.is_symlink() {
            match path.canonicalize() {
                Err(_) => Err(Skipped::Dangling),
                Ok(target) => match target.strip_prefix(&root) {
                    Err(_) => Err(Skipped::Outside(target.clone())),
                    Ok(relative) => std::fs::metadata(&target)
                        .map_err(|_| Skipped::Dangling)
                        .and_then(|meta| regular(meta.file_type()))
                        .map(|()| Found {
                            key: escaped(relative.as_os_str().as_encoded_bytes()),
                            path: target.clone(),
                            within: relative.to_path_buf(),
                        }),
                },
            }
        } else {
            regular(kind).map(|()| Found {
                key: escaped(
                    path.strip_prefix(dir)
                        .unwrap_or(&path)
                        .as_os_str()
                        .as_encoded_bytes(),
                ),
                path: path.clone(),
                within: folder.join(entry.file_name()),
            })
        };
        match found {
            Ok(found) => {
                if entry.file_name().to_str().is_none() {
                    listing.not_utf8.push(found.clone());
                }
                let target = found.path.canonicalize().unwrap_or(found.path.clone());
                by_target.entry(target).or_insert(found);
            }
            Err(Skipped::Special("directory")) => {}
            Err(why) => listing.skipped.push((path, why)),
        }
    }
    listing.files = by_target.into_values().collect();
    listing.files.sort_by(|a, b| a.key.cmp(&b.key));
    listing
}

fn regular(kind: std::fs::FileType) -> Result<(), Skipped> {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_file() {
        Ok(())
    } else if kind.is_dir() {
        Err(Skipped::Special("directory"))
    } else if kind.is_fifo() {
        Err(Skipped::Special("FIFO"))
    } else if kind.is_socket() {
        Err(Skipped::Special("socket"))
    } else if kind.is_block_device() || kind.is_char_device() {
        Err(Skipped::Special("device"))
    } else {
        Err(Skipped::Special("special file"))
    }
}

/// A file name as text: UTF-8 as it is, any other byte as `\xNN` (so two names never
/// share a cursor key).
pub fn escaped(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02X}"));
        }
    }
    text
}

fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            if tail.is_empty() {
                return true;
            }
            (0..=rest.len()).any(|idx| rest.is_char_boundary(idx) && wildcard(tail, &rest[idx..]))
        }
    }
}

/// Opens `within` (a path relative to `dir`) for reading, never blocking on a FIFO or
/// device put in its place, and never outside `dir`: a symlink swapped in after the listing
/// (at any part of the path) that leads out is refused by the kernel's resolution
/// (`RESOLVE_BENEATH`). Where the kernel lacks `openat2` (or a sandbox refuses it), the
/// last part is not followed.
pub fn open_within(dir: &Path, within: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let opened = match rustix::fs::openat2(
        &root,
        within,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        // No `openat2` in the kernel, or a sandbox (seccomp) that refuses it.
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
            rustix::fs::openat(&root, within, flags | OFlags::NOFOLLOW, Mode::empty())
        }
        other => other,
    };
    let file = std::fs::File::from(opened?);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Bytes of an over-long line kept in its dead letter.
pub const KEPT: usize = 1024;

/// The UTF-8 byte order mark, skipped at the start of a file.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A line read from a file.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its end of line.
    Whole(Vec<u8>),
    /// A complete line over the limit: its first [`KEPT`] bytes, its length (without the
    /// end of line) and its offset.
    Over { head: Vec<u8>, len: u64, at: u64 },
}

/// An over-long line whose end has not been written yet: its offset, the bytes seen so
/// far and its first bytes. The next read resumes after them instead of reading the line
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub at: u64,
    pub len: u64,
    pub head: Vec<u8>,
}

/// The lines of one read and where the next read starts.
#[derive(Debug, Default)]
pub struct Lines {
    pub lines: Vec<Line>,
    pub next: u64,
    pub unfinished: Option<Unfinished>,
}

/// The line being read: all of it up to the limit, only its head past it.
struct Current {
    bytes: Vec<u8>,
    len: u64,
}

impl Current {
    fn push(&mut self, data: &[u8], limit: u64) {
        self.len += data.len() as u64;
        if self.len <= limit {
            self.bytes.extend_from_slice(data);
        } else {
            let room = KEPT.saturating_sub(self.bytes.len()).min(data.len());
            self.bytes.extend_from_slice(&data[..room]);
            self.bytes.truncate(KEPT);
        }
    }
}

/// Reads up to `max` complete lines from byte `offset`, none held whole past `limit`
/// bytes; returns them and the new offset. A last line without its newline is left for
/// later (it may still be being written). `resume` continues an over-long line that
/// started at `offset`.
pub fn read_lines(
    file: &mut std::fs::File,
    offset: u64,
    max: usize,
    limit: u64,
    resume: Option<Unfinished>,
) -> std::io::Result<Lines> {
    let mut current = Current {
        bytes: Vec::new(),
        len: 0,
    };
    let mut from = offset;
    if let Some(unfinished) = resume.filter(|u| u.at == offset) {
        from = offset + unfinished.len;
        current = Current {
            bytes: unfinished.head,
            len: unfinished.len,
        };
    }
    file.seek(SeekFrom::Start(from))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut out = Lines {
        next: offset,
        ..Lines::default()
    };
    while out.lines.len() < max {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            if current.len > limit {
                out.unfinished = Some(Unfinished {
                    at: out.next,
                    len: current.len,
                    head: current.bytes,
                });
            }
            break;
        }
        let Some(end) = chunk.iter().position(|b| *b == b'\n') else {
            let n = chunk.len();
            current.push(chunk, limit);
            reader.consume(n);
            continue;
        };
        current.push(&chunk[..end], limit);
        reader.consume(end + 1);
        let line = std::mem::replace(
            &mut current,
            Current {
                bytes: Vec::new(),
                len: 0,
            },
        );
        let at = out.next;
        out.next += line.len + 1;
        out.lines.push(if line.len > limit {
            Line::Over {
                head: line.bytes,
                len: line.len,
                at,
            }
        } else {
            let mut bytes = line.bytes;
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            Line::Whole(bytes)
        });
    }
    Ok(out)
}

/// A mark of the bytes just before `offset` (up to 64), kept with the cursor: when they
/// change, the file was rewritten and is read again from its start.
pub fn mark(file: &mut std::fs::File, offset: u64) -> std::io::Result<u64> {
    let start = offset.saturating_sub(64);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity(64);
    std::io::Read::take(&mut *file, offset - start).read_to_end(&mut bytes)?;
    // FNV-1a: stable across builds and versions, unlike the std hasher.
    Ok(bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(name: &str, bytes: &[u8]) -> std::fs::File {
        let path = std::env::temp_dir().join(format!("omniflow-{name}-{}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let file =
            open_within(path.parent().unwrap(), Path::new(path.file_name().unwrap())).unwrap();
        let _ = std::fs::remove_file(&path);
        file
    }

    /// A fresh directory holding `inside/` (the connection's) and `outside/secret.jsonl`.
    fn inbox(name: &str) -> PathBuf {
        let base =
            std::env::temp_dir().join(format!("omniflow-inbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("inside")).unwrap();
        std::fs::create_dir_all(base.join("outside/deeper")).unwrap();
        std::fs::write(base.join("outside/secret.jsonl"), "{\"secret\":1}\n").unwrap();
        std::fs::write(base.join("outside/deeper/leak.jsonl"), "{\"secret\":2}\n").unwrap();
        base
    }

    #[test]
    fn a_pattern_folder_linked_outside_is_not_listed() {
        let base = inbox("folder");
        let dir = base.join("inside");
        std::os::unix::fs::symlink(base.join("outside/deeper"), dir.join("sub")).unwrap();
        let listing = matching_files(&dir, "sub/*.jsonl");
        assert!(listing.files.is_empty(), "{:?}", listing.files);
        let why = listing.unreadable.expect("refused").to_string();
        assert!(why.contains("outside the connection's directory"), "{why}");
        // A folder linked inside is read, by its real path.
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::fs::write(dir.join("real/a.jsonl"), "{}\n").unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("near")).unwrap();
        let listing = matching_files(&dir, "near/*.jsonl");
        assert_eq!(listing.files.len(), 1, "{:?}", listing.unreadable);
        assert_eq!(listing.files[0].key, "near/a.jsonl");
        assert!(open_within(&dir, &listing.files[0].within).is_ok());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_file_swapped_for_a_link_outside_after_the_listing_is_not_opened() {
        let base = inbox("swap");
        let dir = base.join("inside");
        std::fs::write(dir.join("orders.jsonl"), "{}\n").unwrap();
        let listing = matching_files(&dir, "*.jsonl");
        assert_eq!(listing.files.len(), 1);
        let found = &listing.files[0];
        // Between the listing and the open, the file becomes a link to a file outside.
        std::fs::remove_file(dir.join("orders.jsonl")).unwrap();
        std::os::unix::fs::symlink(base.join("outside/secret.jsonl"), dir.join("orders.jsonl"))
            .unwrap();
        assert!(open_within(&dir, &found.within).is_err());
        // So does a folder on the way.
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/leak.jsonl"), "{}\n").unwrap();
        let listing = matching_files(&dir, "sub/*.jsonl");
        assert_eq!(listing.files.len(), 1);
        std::fs::remove_dir_all(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink(base.join("outside/deeper"), dir.join("sub")).unwrap();
        assert!(open_within(&dir, &listing.files[0].within).is_err());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_long_line_is_kept_by_its_head_and_an_unfinished_one_resumes() {
        let long = "y".repeat(5000);
        let text = format!("a\r\n{long}\nb\n{long}");
        let mut file = file_with("lines", text.as_bytes());
        let read = read_lines(&mut file, 0, 10, 100, None).unwrap();
        assert_eq!(read.lines.len(), 3);
        assert_eq!(read.lines[0], Line::Whole(b"a".to_vec()));
        assert_eq!(
            read.lines[1],
            Line::Over {
                head: vec![b'y'; KEPT],
                len: 5000,
                at: 3
            }
        );
        assert_eq!(read.lines[2], Line::Whole(b"b".to_vec()));
        assert_eq!(read.next, 5006);
        let unfinished = read.unfinished.expect("the last line has no end yet");
        assert_eq!((unfinished.at, unfinished.len), (5006, 5000));
        // The end arrives: the read goes on from where it stopped, not from the line start.
        let mut file = file_with("lines-more", format!("{text}zz\n").as_bytes());
        let read = read_lines(&mut file, 5006, 10, 100, Some(unfinished)).unwrap();
        assert_eq!(read.next, 5006 + 5003);
        assert!(matches!(
            read.lines[..],
            [Line::Over {
                len: 5002,
                at: 5006,
                ..
            }]
        ));
        // A line at the limit is whole.
        let mut file = file_with("limit", b"0123456789\n");
        let read = read_lines(&mut file, 0, 10, 10, None).unwrap();
        assert_eq!(read.lines, vec![Line::Whole(b"0123456789".to_vec())]);
    }

    #[test]
    fn names_in_other_encodings_get_distinct_keys() {
        assert_eq!(escaped(b"caf\xe9.jsonl"), "caf\\xE9.jsonl");
        assert_ne!(escaped(b"\xe9.jsonl"), escaped(b"\xe8.jsonl"));
        assert_eq!(escaped("café.jsonl".as_bytes()), "café.jsonl");
    }

    #[test]
    fn wildcards_match_names() {
        assert!(wildcard("*.jsonl", "orders.jsonl"));
        assert!(wildcard("orders-*.jsonl", "orders-1.jsonl"));
        assert!(!wildcard("*.jsonl", "orders.csv"));
        assert!(wildcard("exact.csv", "exact.csv"));
    }
}
