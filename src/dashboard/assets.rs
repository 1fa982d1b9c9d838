//! The dashboard's files, embedded in the binary: its stylesheet, its script and the
//! vendored htmx (2.0.11, under the Zero-Clause BSD licence in `assets/htmx.LICENSE`).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Name, content type and bytes of each file.
const FILES: &[(&str, &str, &[u8])] = &[
    ("eddy.css", "text/css; charset=utf-8", include_bytes!("assets/eddy.css")),
    (
        "eddy.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/eddy.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/htmx.min.js"),
    ),
];

/// `GET /ui/assets/{name}`: open to all, as the files hold nothing of the user's.
pub async fn asset(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=300"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => super::layout::error_page(StatusCode::NOT_FOUND, &format!("no dashboard file {name:?}")),
    }
}
