//! The console's errors: each is a page with one Chinese sentence (or, with no session, the
//! way to the login page).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shouwang_core::Error;

use crate::html;

/// Why a request was not served. `Display` is a Chinese sentence.
#[derive(Debug)]
pub enum OfficeError {
    /// The core refused or failed (its sentence).
    Core(Box<Error>),
    /// No valid session: go and log in.
    NotLoggedIn,
    /// The member may not do this.
    Forbidden(String),
    /// The form was not right (the sentence says what).
    BadInput(String),
    /// The form's CSRF token was missing or wrong.
    Csrf,
    /// The posted form was over the console's body limit (`FORM_BODY_LIMIT`).
    TooLarge,
    Internal(String),
}

impl std::fmt::Display for OfficeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OfficeError::Core(e) => write!(f, "{e}"),
            OfficeError::NotLoggedIn => write!(f, "请先登录"),
            OfficeError::Forbidden(s) | OfficeError::BadInput(s) => write!(f, "{s}"),
            OfficeError::Csrf => write!(
                f,
                "表单已过期或不是从本系统的页面提交的，没有做任何改动；请刷新页面后重试"
            ),
            OfficeError::TooLarge => {
                write!(f, "填写的内容太长了，没有做任何改动；请删减后重新提交")
            }
            OfficeError::Internal(s) => write!(f, "服务器内部错误：{s}"),
        }
    }
}

impl std::error::Error for OfficeError {}

impl From<Error> for OfficeError {
    fn from(e: Error) -> Self {
        OfficeError::Core(Box::new(e))
    }
}

impl From<rusqlite::Error> for OfficeError {
    fn from(e: rusqlite::Error) -> Self {
        OfficeError::Core(Box::new(Error::Storage(e)))
    }
}

impl OfficeError {
    fn status(&self) -> StatusCode {
        match self {
            OfficeError::Core(e) => match **e {
                Error::NotPermitted(_) => StatusCode::FORBIDDEN,
                Error::NotFound { .. } => StatusCode::NOT_FOUND,
                Error::InvalidInput { .. } | Error::Missing(_) | Error::Ambiguous { .. } => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            OfficeError::NotLoggedIn => StatusCode::SEE_OTHER,
            OfficeError::Forbidden(_) => StatusCode::FORBIDDEN,
            OfficeError::BadInput(_) => StatusCode::BAD_REQUEST,
            OfficeError::Csrf => StatusCode::FORBIDDEN,
            OfficeError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            OfficeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for OfficeError {
    fn into_response(self) -> Response {
        if let OfficeError::NotLoggedIn = self {
            return (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
        }
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!("office: {self}");
        }
        let body = format!(
            "<div class=\"error\" role=\"alert\">{}</div><p><a href=\"/\">回到概览</a></p>",
            html::esc(&self.to_string())
        );
        (status, html::bare_page("出错了", &body)).into_response()
    }
}
