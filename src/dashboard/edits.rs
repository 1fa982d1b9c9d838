//! Changing an event from the dashboard: edit its data in a JSON editor, redact fields or
//! the payload, delete it after a confirmation. The same services as the API, audited as
//! done in the dashboard.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, Visitor};
use super::{ACTOR, PageError, segment};
use crate::services::{Redaction, Services};

/// The buttons of an event's page.
pub fn actions(visitor: &Visitor, path: &str) -> Markup {
    html! {
        div.actions {
            a.button href={ (path) "/edit" } { "Edit data" }
            form.inline method="post" action={ (path) "/redact" } {
                (visitor.csrf_field())
                label { "Redact fields " input name="fields" placeholder="data.email, data.card.number" size="28"; }
                label { input type="checkbox" name="payload" value="true"; " the whole payload" }
                button type="submit" { "Redact" }
            }
            a.button.danger href={ (path) "/delete" } { "Delete…" }
        }
    }
}

/// `GET /ui/events/{id}/edit`: the data in an editor.
pub async fn edit_form(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let detail = services.event(&id).await?;
    let text = serde_json::to_string_pretty(&detail.event.event.data).unwrap_or_default();
    Ok(editor(&visitor, &id, detail.event.version, &text, None))
}

fn editor(visitor: &Visitor, id: &str, version: u32, text: &str, error: Option<&str>) -> Markup {
    let path = format!("/ui/events/{}", segment(id));
    let body = html! {
        p { "The event's data as JSON. Saving makes version " (version + 1) "; the version before stays in its history." }
        form.editor method="post" action={ (path) "/edit" } {
            (visitor.csrf_field())
            input type="hidden" name="version" value=(version);
            @if let Some(error) = error { p.error #json-error role="alert" { (error) } }
            @else { p.error #json-error role="alert" hidden {} }
            textarea #data name="data" rows="24" spellcheck="false" data-json-editor { (text) }
            div.actions {
                button type="submit" { "Save" }
                a href=(path) { "Cancel" }
            }
        }
    };
    layout::page(&format!("Edit event {id}"), visitor, Section::Events, body)
}

/// The editor's form.
#[derive(Debug, Deserialize)]
pub struct EditForm {
    data: String,
    version: u32,
}

/// `POST /ui/events/{id}/edit`: saves the data unless it is not JSON (shown again with the
/// error) or the event changed since the editor opened.
pub async fn edit(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    form: Result<Form<EditForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    let data: serde_json::Value = match serde_json::from_str(&form.data) {
        Ok(data) => data,
        Err(e) => {
            let error = format!("Not saved: the data is not valid JSON ({e}).");
            let page = editor(&visitor, &id, form.version, &form.data, Some(&error));
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let edited = services.replace_data(&id, &data, form.version, ACTOR).await?;
    let done = if edited.changed { "edited" } else { "unchanged" };
    Ok(Redirect::to(&format!("/ui/events/{}?done={done}", segment(&id))).into_response())
}

/// The redaction form.
#[derive(Debug, Deserialize)]
pub struct RedactForm {
    #[serde(default)]
    fields: String,
    #[serde(default)]
    payload: Option<String>,
}

/// `POST /ui/events/{id}/redact`: the fields (`data.` may be left out, as in `eddy events
/// edit --set`) or the whole payload.
pub async fn redact(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
    form: Result<Form<RedactForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let Form(form) = form?;
    let fields: Vec<String> = form
        .fields
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let redaction = Redaction::new(fields, form.payload.is_some())?;
    services.redact(&id, &redaction, ACTOR).await?;
    Ok(Redirect::to(&format!("/ui/events/{}?done=redacted", segment(&id))))
}

/// `GET /ui/events/{id}/delete`: asks first.
pub async fn delete_form(
    State(services): State<Arc<Services>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let detail = services.event(&id).await?;
    let path = format!("/ui/events/{}", segment(&id));
    let body = html! {
        p.warning {
            "This removes the event (" code { (detail.event.event.kind) } "), its "
            (detail.deliveries.len()) " deliveries with every attempt and captured log, and its "
            (detail.history.len()) " earlier versions. It cannot be undone."
        }
        form method="post" action={ (path) "/delete" } {
            (visitor.csrf_field())
            button.danger type="submit" { "Delete the event" }
            " "
            a href=(path) { "Keep it" }
        }
    };
    Ok(layout::page(
        &format!("Delete event {id}?"),
        &visitor,
        Section::Events,
        body,
    ))
}

/// `POST /ui/events/{id}/delete`.
pub async fn delete(State(services): State<Arc<Services>>, Path(id): Path<String>) -> Result<Redirect, PageError> {
    services.delete(&id, ACTOR).await?;
    Ok(Redirect::to("/ui/events?done=deleted"))
}
