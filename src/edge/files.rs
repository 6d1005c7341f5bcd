//! Files of [`PlainHttp::static_dir`](crate::PlainHttp::static_dir): the path checked, the
//! file read whole, its content type from its extension.

use std::path::{Path, PathBuf};

use crate::http::Response;

/// The file a request path names under `root`, or `None` if the path is refused or names
/// nothing there.
pub(crate) fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    let mut file = root.to_path_buf();
    for segment in decoded.split('/') {
        if segment.is_empty() {
            continue;
        }
        // `..`, hidden files, and what another platform would read as a separator.
        if segment.starts_with('.') || segment.contains(['\\', '\0', ':']) {
            return None;
        }
        file.push(segment);
    }
    if file.is_dir() {
        file.push("index.html");
    }
    // A symbolic link may still lead out: compare real paths.
    let real = file.canonicalize().ok()?;
    let real_root = root.canonicalize().ok()?;
    (real.starts_with(&real_root) && real.is_file()).then_some(real)
}

/// The largest file served: it is read whole on a core loop.
pub(crate) const MAX_FILE: u64 = 8 << 20;

/// Reads a resolved file into a 200, or a 404 if it went away meanwhile; a file over
/// [`MAX_FILE`] is a 500 (and a log line), not a core loop busy reading it.
pub(crate) fn serve(file: &Path) -> Response {
    if std::fs::metadata(file).is_ok_and(|m| m.len() > MAX_FILE) {
        log::error!(
            "{} is over {MAX_FILE} bytes: not served on the WebSocket port",
            file.display()
        );
        return Response::new(500);
    }
    match std::fs::read(file) {
        Ok(body) => Response::new(200)
            .header("Content-Type", content_type(file))
            .body(body),
        Err(_) => Response::new(404),
    }
}

/// The content type of a file, by its extension.
pub(crate) fn content_type(file: &Path) -> &'static str {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes (not `+`: that is a space only in queries); `None` for a malformed
/// escape or a result that is not UTF-8, which names no file.
fn percent_decode(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_owned());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        let root = std::env::temp_dir().join(format!("corepush-files-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(root.join("sub/a b.js"), "x").unwrap();
        std::fs::write(root.join(".secret"), "x").unwrap();
        assert_eq!(
            resolve(&root, "/"),
            root.join("index.html").canonicalize().ok()
        );
        assert!(resolve(&root, "/sub/a%20b.js").is_some());
        for refused in [
            "/../etc/passwd",
            "/sub/../index.html",
            "/%2e%2e/x",
            "/.secret",
            "/sub%5c..%5cindex.html",
            "/missing",
            "/sub",
            "/%zz",
            "/%ff",
        ] {
            assert_eq!(resolve(&root, refused), None, "{refused}");
        }
        assert_eq!(serve(&root.join("index.html")).body, b"<p>hi</p>");
        let big = root.join("big.bin");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FILE + 1).unwrap();
        assert_eq!(serve(&big).status, 500);
        assert_eq!(content_type(Path::new("a.PNG")), "image/png");
        assert_eq!(content_type(Path::new("a")), "application/octet-stream");
        let _ = std::fs::remove_dir_all(&root);
    }
}
